#!/usr/bin/env bash
# alb.sh: put gatehouse behind an AWS Application Load Balancer, the way
# conf/alb.yaml expects it: an HTTP target group on PORT and two listeners,
#
#   HTTP   80 -> HTTP PORT   forward (gatehouse redirects to https itself)
#   HTTPS 443 -> HTTP PORT   forward, TLS ends at the ALB
#
# The ALB speaks HTTP to gatehouse: no PROXY header; the client's address and
# scheme arrive in X-Forwarded-For / X-Forwarded-Proto, which gatehouse
# believes only from trusted_proxies (the VPC range).
# See contrib/aws/README.md. --dry-run prints the aws calls and runs nothing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: $gh_prog --name NAME --vpc-id VPC --subnets subnet-a,subnet-b --cert-arn ARN
                --instance-port PORT
                [--security-groups sg-1,sg-2] [--instances i-1,i-2] [--internal]
                [--target-group-name NAME] [--ssl-policy POLICY]
                [--idle-timeout SECONDS] [--drain-seconds SECONDS]
                [--region REGION] [--dry-run]

  --name              load balancer name (1-32 letters, digits, hyphens)
  --vpc-id            the VPC of the instances
  --subnets           at least two subnets in different zones
  --cert-arn          ACM or IAM certificate for the HTTPS 443 listener
  --instance-port     gatehouse's listener (conf/alb.yaml: 8080)
  --security-groups   the ALB's security groups (default: the VPC's default group)
  --instances         EC2 instances to register
  --internal          an internal load balancer (default: internet-facing)
  --target-group-name default NAME
  --ssl-policy        TLS policy of 443 (default ELBSecurityPolicy-TLS13-1-2-2021-06)
  --idle-timeout      ALB idle timeout, default 60; gatehouse's ping_interval must stay
                      below it, and its http.keepalive_timeout above it
  --drain-seconds     deregistration delay, default 55 = drain_delay + drain_timeout
                      of conf/alb.yaml
  --region            AWS region (default: the aws CLI's own)
  --dry-run           print every aws call, one a line, and run none
EOF
}

name="" vpc="" subnets_arg="" cert_arn="" port="" sgs_arg="" instances_arg="" internal=0
tg_name="" ssl_policy=ELBSecurityPolicy-TLS13-1-2-2021-06 idle_timeout=60 drain_seconds=55
while [ "$#" -gt 0 ]; do
  case "$1" in
    --name) gh_need_value "$@"; name=$2; shift 2 ;;
    --vpc-id) gh_need_value "$@"; vpc=$2; shift 2 ;;
    --subnets) gh_need_value "$@"; subnets_arg=$2; shift 2 ;;
    --cert-arn) gh_need_value "$@"; cert_arn=$2; shift 2 ;;
    --instance-port) gh_need_value "$@"; port=$2; shift 2 ;;
    --security-groups) gh_need_value "$@"; sgs_arg=$2; shift 2 ;;
    --instances) gh_need_value "$@"; instances_arg=$2; shift 2 ;;
    --internal) internal=1; shift ;;
    --target-group-name) gh_need_value "$@"; tg_name=$2; shift 2 ;;
    --ssl-policy) gh_need_value "$@"; ssl_policy=$2; shift 2 ;;
    --idle-timeout) gh_need_value "$@"; idle_timeout=$2; shift 2 ;;
    --drain-seconds) gh_need_value "$@"; drain_seconds=$2; shift 2 ;;
    --region) gh_need_value "$@"; gh_region=$2; shift 2 ;;
    --dry-run) gh_dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) gh_usage_error "unknown argument '$1'" ;;
  esac
done

[ -n "$name" ] || gh_usage_error "--name is required"
[ -n "$vpc" ] || gh_usage_error "--vpc-id is required"
[ -n "$subnets_arg" ] || gh_usage_error "--subnets is required"
[ -n "$cert_arn" ] || gh_usage_error "--cert-arn is required"
[ -n "$port" ] || gh_usage_error "--instance-port is required"
gh_check_name --name "$name"
gh_check_ids --vpc-id vpc "$vpc"
gh_check_cert_arn "$cert_arn"
gh_check_port --instance-port "$port"
gh_check_int --idle-timeout "$idle_timeout" 1 4000
gh_check_int --drain-seconds "$drain_seconds" 1 3600
[[ $ssl_policy =~ ^ELBSecurityPolicy-[A-Za-z0-9-]+$ ]] ||
  gh_usage_error "--ssl-policy '$ssl_policy': not a predefined ELBSecurityPolicy-... name"
[ -z "$gh_region" ] || gh_check_region "$gh_region"
tg_name=${tg_name:-$name}
gh_check_name --target-group-name "$tg_name"

subnets=() sgs=() instances=()
gh_check_list --subnets "$subnets_arg"
IFS=, read -r -a subnets <<<"$subnets_arg"
gh_check_ids --subnets subnet "${subnets[@]}"
[ "${#subnets[@]}" -ge 2 ] || gh_usage_error "--subnets: an ALB needs at least two (in two zones)"
if [ -n "$sgs_arg" ]; then
  gh_check_list --security-groups "$sgs_arg"
  IFS=, read -r -a sgs <<<"$sgs_arg"
  gh_check_ids --security-groups sg "${sgs[@]}"
fi
if [ -n "$instances_arg" ]; then
  gh_check_list --instances "$instances_arg"
  IFS=, read -r -a instances <<<"$instances_arg"
  gh_check_ids --instances i "${instances[@]}"
fi
if [ "$idle_timeout" -le 30 ]; then
  gh_note "warning: --idle-timeout $idle_timeout: gatehouse's ping_interval (default 30s) must be below it, or idle WebSockets are cut"
fi
if [ "$idle_timeout" -ge 75 ]; then
  gh_note "warning: --idle-timeout $idle_timeout: raise gatehouse's http.keepalive_timeout (default 75s) above it, or the ALB may reuse a connection gatehouse is closing (502s)"
fi

gh_begin

# 1. The load balancer. Its ARN (and DNS name) come back for the calls below;
#    a dry run shows LOAD_BALANCER_ARN in their place.
create=(elbv2 create-load-balancer --name "$name" --type application --subnets "${subnets[@]}")
if [ "${#sgs[@]}" -gt 0 ]; then create+=(--security-groups "${sgs[@]}"); fi
if [ "$internal" -eq 1 ]; then create+=(--scheme internal); else create+=(--scheme internet-facing); fi
lb=""
gh_aws_value lb LOAD_BALANCER_ARN "${create[@]}" \
  --query 'LoadBalancers[0].[LoadBalancerArn,DNSName]' --output text
if [ "$gh_dry_run" -eq 0 ] && [[ $lb != *$'\t'* ]]; then
  gh_fail "create-load-balancer: expected ARN and DNS name, got '$lb'; stopping here"
fi
lb_arn=${lb%%$'\t'*}
dns_name=${lb#*$'\t'}

# 2. Idle timeout: the ALB closes a connection, WebSockets included, with no
#    data either way for this long, so gatehouse's ping_interval (30 s) must
#    stay below it. X-Forwarded-For in `append` mode (the default, pinned
#    here): the ALB adds the address it saw as the rightmost element, the
#    one gatehouse takes from a trusted peer.
gh_aws elbv2 modify-load-balancer-attributes --load-balancer-arn "$lb_arn" --attributes \
  "Key=idle_timeout.timeout_seconds,Value=$idle_timeout" \
  Key=routing.http.xff_header_processing.mode,Value=append

# 3. Target group: HTTP/1.1 to PORT (WebSocket upgrades pass through an
#    HTTP/1.1 group). Health check GET /healthz, 200 only; it arrives without
#    X-Forwarded-Proto, and /healthz is the first route, so it is answered,
#    not redirected. On SIGTERM it answers 503, and Interval x
#    UnhealthyThreshold + Timeout = 25 s = conf/alb.yaml's drain_delay takes
#    the instance out. The deregistration delay is at least drain_delay +
#    drain_timeout, so gatehouse closes its WebSockets with 1001 itself.
tg_arn=""
gh_aws_value tg_arn TARGET_GROUP_ARN elbv2 create-target-group --name "$tg_name" \
  --protocol HTTP --protocol-version HTTP1 --port "$port" --vpc-id "$vpc" --target-type instance \
  --health-check-protocol HTTP --health-check-port traffic-port --health-check-path /healthz \
  --health-check-interval-seconds 10 --health-check-timeout-seconds 5 \
  --healthy-threshold-count 2 --unhealthy-threshold-count 2 --matcher HttpCode=200 \
  --query 'TargetGroups[0].TargetGroupArn' --output text
gh_aws elbv2 modify-target-group-attributes --target-group-arn "$tg_arn" --attributes \
  "Key=deregistration_delay.timeout_seconds,Value=$drain_seconds"

# 4. Listeners. Port 80 forwards rather than using the ALB's own redirect
#    action: gatehouse's route table decides (X-Forwarded-Proto: http from a
#    trusted peer matches `scheme: http` -> redirect_https), so the same
#    conf/*.yaml routes hold behind every balancer and in front of none, and
#    a route you put before the redirect (an ACME challenge, a plain-HTTP
#    health URL) works. The price is one round trip through gatehouse.
gh_aws elbv2 create-listener --load-balancer-arn "$lb_arn" --protocol HTTP --port 80 \
  --default-actions "Type=forward,TargetGroupArn=$tg_arn"
gh_aws elbv2 create-listener --load-balancer-arn "$lb_arn" --protocol HTTPS --port 443 \
  --certificates "CertificateArn=$cert_arn" --ssl-policy "$ssl_policy" \
  --default-actions "Type=forward,TargetGroupArn=$tg_arn"

# 5. The instances, last.
if [ "${#instances[@]}" -gt 0 ]; then
  targets=()
  for i in "${instances[@]}"; do targets+=("Id=$i"); done
  gh_aws elbv2 register-targets --target-group-arn "$tg_arn" --targets "${targets[@]}"
fi

if [ "$gh_dry_run" -eq 0 ]; then
  gh_note "done: $name is $dns_name; let the instances accept port $port only from the ALB's security group"
fi
