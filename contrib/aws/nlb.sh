#!/usr/bin/env bash
# nlb.sh: put gatehouse behind an AWS Network Load Balancer, the way
# conf/nlb.yaml expects it: a TCP target group on PORT with
# proxy_protocol_v2.enabled, so every connection (health checks included)
# starts with a PROXY v2 header, and two listeners:
#
#   TCP  80 -> TCP PORT
#   TLS 443 -> TCP PORT          with --cert-arn: TLS ends at the NLB
#   TCP 443 -> TCP TLS_PORT      without it: TLS passes through to a gatehouse
#                                listener with tls: on TLS_PORT
#
# See contrib/aws/README.md. --dry-run prints the aws calls and runs nothing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: $gh_prog --name NAME --vpc-id VPC --subnets subnet-a,subnet-b --instance-port PORT
                [--cert-arn ARN | --tls-instance-port PORT]
                [--security-groups sg-1,sg-2] [--instances i-1,i-2] [--internal]
                [--target-group-name NAME] [--ssl-policy POLICY] [--drain-seconds SECONDS]
                [--region REGION] [--dry-run]

  --name              load balancer name (1-32 letters, digits, hyphens)
  --vpc-id            the VPC of the instances
  --subnets           subnets to place the NLB in, one per zone
  --instance-port     gatehouse's plain listener (conf/nlb.yaml: 8080)
  --cert-arn          ACM or IAM certificate: a TLS 443 listener ending TLS at the NLB;
                      without it TCP 443 passes TLS through to --tls-instance-port
  --tls-instance-port gatehouse's listener with tls: for pass-through (default 8443)
  --security-groups   the NLB's security groups (only settable at creation)
  --instances         EC2 instances to register
  --internal          an internal load balancer (default: internet-facing)
  --target-group-name default NAME (pass-through adds a second one, NAME-tls)
  --ssl-policy        TLS policy of the TLS listener (default ELBSecurityPolicy-TLS13-1-2-2021-06)
  --drain-seconds     deregistration delay and unhealthy draining interval, default 55 =
                      drain_delay + drain_timeout of conf/nlb.yaml
  --region            AWS region (default: the aws CLI's own)
  --dry-run           print every aws call, one a line, and run none
EOF
}

name="" vpc="" subnets_arg="" port="" cert_arn="" tls_port="" sgs_arg="" instances_arg=""
internal=0 tg_name="" ssl_policy=ELBSecurityPolicy-TLS13-1-2-2021-06 drain_seconds=55
while [ "$#" -gt 0 ]; do
  case "$1" in
    --name) gh_need_value "$@"; name=$2; shift 2 ;;
    --vpc-id) gh_need_value "$@"; vpc=$2; shift 2 ;;
    --subnets) gh_need_value "$@"; subnets_arg=$2; shift 2 ;;
    --instance-port) gh_need_value "$@"; port=$2; shift 2 ;;
    --cert-arn) gh_need_value "$@"; cert_arn=$2; shift 2 ;;
    --tls-instance-port) gh_need_value "$@"; tls_port=$2; shift 2 ;;
    --security-groups) gh_need_value "$@"; sgs_arg=$2; shift 2 ;;
    --instances) gh_need_value "$@"; instances_arg=$2; shift 2 ;;
    --internal) internal=1; shift ;;
    --target-group-name) gh_need_value "$@"; tg_name=$2; shift 2 ;;
    --ssl-policy) gh_need_value "$@"; ssl_policy=$2; shift 2 ;;
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
[ -n "$port" ] || gh_usage_error "--instance-port is required"
gh_check_name --name "$name"
gh_check_ids --vpc-id vpc "$vpc"
gh_check_port --instance-port "$port"
gh_check_int --drain-seconds "$drain_seconds" 1 3600
[[ $ssl_policy =~ ^ELBSecurityPolicy-[A-Za-z0-9-]+$ ]] ||
  gh_usage_error "--ssl-policy '$ssl_policy': not a predefined ELBSecurityPolicy-... name"
[ -z "$gh_region" ] || gh_check_region "$gh_region"
if [ -n "$cert_arn" ]; then
  gh_check_cert_arn "$cert_arn"
  [ -z "$tls_port" ] || gh_usage_error "--tls-instance-port is for pass-through, without --cert-arn"
else
  tls_port=${tls_port:-8443}
  gh_check_port --tls-instance-port "$tls_port"
  [ "$tls_port" != "$port" ] ||
    gh_usage_error "--tls-instance-port must differ from --instance-port (that one speaks plain HTTP)"
fi
tg_name=${tg_name:-$name}
gh_check_name --target-group-name "$tg_name"
if [ -z "$cert_arn" ]; then
  gh_check_name "--target-group-name (+ -tls)" "$tg_name-tls"
fi

subnets=() sgs=() instances=()
gh_check_list --subnets "$subnets_arg"
IFS=, read -r -a subnets <<<"$subnets_arg"
gh_check_ids --subnets subnet "${subnets[@]}"
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

gh_begin

# 1. The load balancer. Its ARN (and DNS name) come back for the calls below;
#    a dry run shows LOAD_BALANCER_ARN in their place.
create=(elbv2 create-load-balancer --name "$name" --type network --subnets "${subnets[@]}")
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

# target_group NAME PORT HEALTH_PORT VAR PLACEHOLDER: a TCP target group on
# PORT, its ARN into VAR, then its attributes:
#  - health check: HTTP GET /healthz on HEALTH_PORT, 200 only. With PROXY v2
#    on, the NLB opens each health check with a v2 LOCAL header (no
#    addresses); gatehouse serves LOCAL like a direct connection. On SIGTERM
#    /healthz answers 503, and Interval x UnhealthyThreshold + Timeout = 25 s
#    = conf/nlb.yaml's drain_delay takes the instance out.
#  - proxy_protocol_v2.enabled: the real client address and port, and the
#    listener port the client used (443 = https), in a v2 header.
#  - preserve_client_ip.enabled=false: on by default for instance targets,
#    and then the socket's peer would be the client itself, outside
#    trusted_proxies, and gatehouse would refuse its PROXY header. Off, the
#    peer is the NLB's private address in the VPC range.
#  - deregistration_delay and, because an NLB otherwise resets every
#    connection of a target the moment it turns unhealthy, unhealthy
#    connection termination off with a draining interval: both at least
#    drain_delay + drain_timeout, so gatehouse closes its WebSockets with
#    1001 itself instead of the NLB cutting them.
target_group() {
  local tg="" tg_create=(elbv2 create-target-group --name "$1" --protocol TCP --port "$2"
    --vpc-id "$vpc" --target-type instance
    --health-check-protocol HTTP --health-check-port "$3" --health-check-path /healthz
    --health-check-interval-seconds 10 --health-check-timeout-seconds 5
    --healthy-threshold-count 2 --unhealthy-threshold-count 2 --matcher HttpCode=200)
  gh_aws_value tg "$5" "${tg_create[@]}" --query 'TargetGroups[0].TargetGroupArn' --output text
  gh_aws elbv2 modify-target-group-attributes --target-group-arn "$tg" --attributes \
    Key=proxy_protocol_v2.enabled,Value=true \
    Key=preserve_client_ip.enabled,Value=false \
    "Key=deregistration_delay.timeout_seconds,Value=$drain_seconds" \
    Key=target_health_state.unhealthy.connection_termination.enabled,Value=false \
    "Key=target_health_state.unhealthy.draining_interval_seconds,Value=$drain_seconds"
  printf -v "$4" '%s' "$tg"
}

# 2. Target groups, attributes set before any listener sends them traffic.
tg_arn="" tls_tg_arn=""
target_group "$tg_name" "$port" traffic-port tg_arn TARGET_GROUP_ARN
if [ -z "$cert_arn" ]; then
  # pass-through: the TLS port cannot answer a plain HTTP health check, so
  # this group checks the plain listener of the same gatehouse
  target_group "$tg_name-tls" "$tls_port" "$port" tls_tg_arn TLS_TARGET_GROUP_ARN
fi

# 3. Listeners. The NLB's idle timeout is 350 s (fixed for TLS listeners, the
#    default of the tcp.idle_timeout.seconds attribute for TCP ones): far
#    above gatehouse's ping_interval (30 s), nothing to set.
gh_aws elbv2 create-listener --load-balancer-arn "$lb_arn" --protocol TCP --port 80 \
  --default-actions "Type=forward,TargetGroupArn=$tg_arn"
if [ -n "$cert_arn" ]; then
  gh_aws elbv2 create-listener --load-balancer-arn "$lb_arn" --protocol TLS --port 443 \
    --certificates "CertificateArn=$cert_arn" --ssl-policy "$ssl_policy" \
    --default-actions "Type=forward,TargetGroupArn=$tg_arn"
else
  gh_aws elbv2 create-listener --load-balancer-arn "$lb_arn" --protocol TCP --port 443 \
    --default-actions "Type=forward,TargetGroupArn=$tls_tg_arn"
fi

# 4. The instances, last.
if [ "${#instances[@]}" -gt 0 ]; then
  targets=()
  for i in "${instances[@]}"; do targets+=("Id=$i"); done
  gh_aws elbv2 register-targets --target-group-arn "$tg_arn" --targets "${targets[@]}"
  if [ -z "$cert_arn" ]; then
    gh_aws elbv2 register-targets --target-group-arn "$tls_tg_arn" --targets "${targets[@]}"
  fi
fi

if [ "$gh_dry_run" -eq 0 ]; then
  gh_note "done: $name is $dns_name; let the instances accept port $port${tls_port:+ and $tls_port} only from the NLB (its security group, or the VPC range)"
fi
