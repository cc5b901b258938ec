# lib.sh: what elb-classic.sh, nlb.sh and alb.sh share. Sourced, never run.
#
# Argument checks that exit 2 with the script's usage, and the one place that
# either prints an aws CLI call (--dry-run) or runs it. A dry run prints each
# call on its own line, every word shell-quoted (printf %q), so the lines can
# be read, diffed, or pasted into a shell; it never needs the aws CLI.
# shellcheck shell=bash

gh_prog=${0##*/}
gh_dry_run=0
gh_region=""

# gh_usage_error MESSAGE: MESSAGE and the calling script's usage on stderr, exit 2.
gh_usage_error() {
  printf '%s: %s\n' "$gh_prog" "$1" >&2
  usage >&2
  exit 2
}

# gh_fail MESSAGE: MESSAGE on stderr, exit 1 (a failure while running, not a usage error).
gh_fail() {
  printf '%s: %s\n' "$gh_prog" "$1" >&2
  exit 1
}

# gh_note MESSAGE: progress on stderr, so stdout stays the calls (dry run) or aws output.
gh_note() {
  printf '%s: %s\n' "$gh_prog" "$1" >&2
}

# gh_need_value OPTION [VALUE...]: called with the script's remaining
# arguments; an option that takes a value must have a non-empty one.
gh_need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    gh_usage_error "$1 needs a value"
  fi
}

# gh_check_name WHAT VALUE: a load balancer or target group name: 1-32 letters,
# digits and hyphens, no hyphen first or last (the rule of all three APIs).
gh_check_name() {
  if ! [[ $2 =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$ ]]; then
    gh_usage_error "$1 '$2': 1-32 letters, digits and hyphens, not starting or ending with a hyphen"
  fi
  if [[ $2 == internal-* ]]; then
    gh_usage_error "$1 '$2': must not start with 'internal-'"
  fi
}

# gh_check_int WHAT VALUE MIN MAX: a decimal integer in [MIN, MAX], no sign, no leading zero.
gh_check_int() {
  if ! [[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
    gh_usage_error "$1 '$2': a whole number from $3 to $4"
  fi
}

# gh_check_port WHAT VALUE
gh_check_port() {
  gh_check_int "$1" "$2" 1 65535
}

# gh_check_cert_arn VALUE: an ACM certificate or an IAM server certificate
# (partitions aws, aws-cn, aws-us-gov).
gh_check_cert_arn() {
  local acm='^arn:aws(-[a-z]+)*:acm:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$'
  local iam='^arn:aws(-[a-z]+)*:iam::[0-9]{12}:server-certificate/[A-Za-z0-9+=,.@_/-]+$'
  if ! [[ $1 =~ $acm || $1 =~ $iam ]]; then
    gh_usage_error "--cert-arn '$1': not arn:aws:acm:REGION:ACCOUNT:certificate/ID nor arn:aws:iam::ACCOUNT:server-certificate/NAME"
  fi
}

# gh_check_region VALUE: us-east-1, eu-west-3, ap-southeast-2, us-gov-west-1, ...
gh_check_region() {
  if ! [[ $1 =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
    gh_usage_error "--region '$1': not a region name such as us-east-1"
  fi
}

# gh_check_list OPTION VALUE: no empty element in a comma-separated list.
gh_check_list() {
  if [ -z "$2" ] || [[ $2 == ,* || $2 == *, || $2 == *,,* ]]; then
    gh_usage_error "$1 '$2': a comma-separated list without empty elements"
  fi
}

# gh_check_ids OPTION PREFIX ID...: every ID is PREFIX- and 8 or 17 hex digits
# (subnet-0abc1234, sg-..., i-..., vpc-...).
gh_check_ids() {
  local opt=$1 prefix=$2 id
  shift 2
  for id in "$@"; do
    if ! [[ $id =~ ^$prefix-[0-9a-f]{8}([0-9a-f]{9})?$ ]]; then
      gh_usage_error "$opt: '$id' is not a $prefix-... id"
    fi
  done
}

# gh_check_zones ZONE...: us-east-1a, eu-west-3c, ...
gh_check_zones() {
  local z
  for z in "$@"; do
    if ! [[ $z =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$ ]]; then
      gh_usage_error "--zones: '$z' is not a zone name such as us-east-1a"
    fi
  done
}

# gh_begin: after the arguments are checked. A real run needs the aws CLI; a
# dry run never looks for it.
gh_begin() {
  if [ "$gh_dry_run" -eq 1 ]; then
    return 0
  fi
  if ! command -v aws >/dev/null 2>&1; then
    gh_fail "the aws CLI is not on PATH (install it, or see the calls with --dry-run)"
  fi
  # aws CLI v2 pipes output through a pager when stdout is a terminal
  export AWS_PAGER=""
}

# gh_print_call WORD...: one line, each word shell-quoted: as is when it has
# only characters no shell treats specially, else in single quotes (the
# output of printf %q, made readable: no backslash before every comma).
gh_print_call() {
  local word line="" q="'" bq="'\\''"
  for word in "$@"; do
    if ! [[ $word =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      word="'${word//$q/$bq}'"
    fi
    line+="${line:+ }$word"
  done
  printf '%s\n' "$line"
}

# gh_aws ARG...: prints (dry run) or runs `aws ARG... [--region R]`; a failed
# call ends the script with its exit status, so nothing after it runs.
gh_aws() {
  local -a call=(aws "$@")
  local rc=0
  if [ -n "$gh_region" ]; then
    call+=(--region "$gh_region")
  fi
  if [ "$gh_dry_run" -eq 1 ]; then
    gh_print_call "${call[@]}"
    return 0
  fi
  "${call[@]}" || rc=$?
  if [ "$rc" -ne 0 ]; then
    gh_note "failed (exit $rc): aws $1 $2; stopping here, nothing after it was run"
    exit "$rc"
  fi
}

# gh_aws_value VAR PLACEHOLDER ARG...: like gh_aws, for a call whose --query
# output (text) a later call needs, e.g. an ARN. VAR gets the output; in a dry
# run it gets PLACEHOLDER, which then shows in the calls that use it.
gh_aws_value() {
  local var=$1 placeholder=$2 out rc=0
  shift 2
  local -a call=(aws "$@")
  if [ -n "$gh_region" ]; then
    call+=(--region "$gh_region")
  fi
  if [ "$gh_dry_run" -eq 1 ]; then
    gh_print_call "${call[@]}"
    printf -v "$var" '%s' "$placeholder"
    return 0
  fi
  out=$("${call[@]}") || rc=$?
  if [ "$rc" -ne 0 ]; then
    gh_note "failed (exit $rc): aws $1 $2; stopping here, nothing after it was run"
    exit "$rc"
  fi
  if [ -z "$out" ] || [ "$out" = None ]; then
    gh_fail "aws $1 $2 returned no value for --query; stopping here"
  fi
  printf -v "$var" '%s' "$out"
}
