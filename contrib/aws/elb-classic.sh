#!/usr/bin/env bash
# elb-classic.sh: put gatehouse behind an AWS Classic ELB, the way
# conf/elb.yaml expects it:
#
#   TCP  80 -> TCP PORT   }  with the ProxyProtocolPolicyType policy on PORT:
#   SSL 443 -> TCP PORT   }  each connection starts with a PROXY v1 line
#
# TLS ends at the ELB; the PROXY line's destination port (443 or 80) tells
# gatehouse which scheme the client used. The proxy-protocol policy exists
# only in the API and the CLI, not in the console: that is why this script.
# See contrib/aws/README.md. --dry-run prints the aws calls and runs nothing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: $gh_prog --name NAME --cert-arn ARN --instance-port PORT
                (--subnets subnet-a,subnet-b | --zones us-east-1a,us-east-1b)
                [--security-groups sg-1,sg-2] [--instances i-1,i-2] [--internal]
                [--ssl-policy POLICY] [--idle-timeout SECONDS] [--drain-seconds SECONDS]
                [--region REGION] [--dry-run]

  --name            load balancer name (1-32 letters, digits, hyphens)
  --cert-arn        ACM (arn:aws:acm:...) or IAM (arn:aws:iam::...:server-certificate/...)
                    certificate for the SSL 443 listener
  --instance-port   the port gatehouse listens on (conf/elb.yaml: 8080)
  --subnets         VPC subnets, one per zone; or --zones for a default VPC
  --security-groups the ELB's security groups (VPC only)
  --instances       EC2 instances to register
  --internal        an internal load balancer (default: internet-facing)
  --ssl-policy      predefined TLS policy for 443 (default ELBSecurityPolicy-TLS-1-2-2017-01)
  --idle-timeout    ELB idle timeout, default 60; gatehouse's ping_interval must stay below it
  --drain-seconds   connection draining timeout, default 55 = drain_delay + drain_timeout
                    of conf/elb.yaml
  --region          AWS region (default: the aws CLI's own)
  --dry-run         print every aws call, one a line, and run none
EOF
}

name="" cert_arn="" port="" subnets_arg="" zones_arg="" sgs_arg="" instances_arg=""
internal=0 ssl_policy=ELBSecurityPolicy-TLS-1-2-2017-01 idle_timeout=60 drain_seconds=55
while [ "$#" -gt 0 ]; do
  case "$1" in
    --name) gh_need_value "$@"; name=$2; shift 2 ;;
    --cert-arn) gh_need_value "$@"; cert_arn=$2; shift 2 ;;
    --instance-port) gh_need_value "$@"; port=$2; shift 2 ;;
    --subnets) gh_need_value "$@"; subnets_arg=$2; shift 2 ;;
    --zones) gh_need_value "$@"; zones_arg=$2; shift 2 ;;
    --security-groups) gh_need_value "$@"; sgs_arg=$2; shift 2 ;;
    --instances) gh_need_value "$@"; instances_arg=$2; shift 2 ;;
    --internal) internal=1; shift ;;
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
[ -n "$cert_arn" ] || gh_usage_error "--cert-arn is required"
[ -n "$port" ] || gh_usage_error "--instance-port is required"
gh_check_name --name "$name"
gh_check_cert_arn "$cert_arn"
gh_check_port --instance-port "$port"
gh_check_int --idle-timeout "$idle_timeout" 1 4000
gh_check_int --drain-seconds "$drain_seconds" 1 3600
[[ $ssl_policy =~ ^ELBSecurityPolicy-[A-Za-z0-9-]+$ ]] ||
  gh_usage_error "--ssl-policy '$ssl_policy': not a predefined ELBSecurityPolicy-... name"
[ -z "$gh_region" ] || gh_check_region "$gh_region"

# A Classic ELB needs its subnets (VPC) or its zones (default VPC) at creation.
subnets=() zones=() sgs=() instances=()
if [ -n "$subnets_arg" ] && [ -n "$zones_arg" ]; then
  gh_usage_error "give --subnets or --zones, not both"
elif [ -n "$subnets_arg" ]; then
  gh_check_list --subnets "$subnets_arg"
  IFS=, read -r -a subnets <<<"$subnets_arg"
  gh_check_ids --subnets subnet "${subnets[@]}"
elif [ -n "$zones_arg" ]; then
  gh_check_list --zones "$zones_arg"
  IFS=, read -r -a zones <<<"$zones_arg"
  gh_check_zones "${zones[@]}"
else
  gh_usage_error "--subnets or --zones is required"
fi
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

gh_begin

# 1. The load balancer and its two listeners, both to plain TCP on PORT: TLS
#    ends here, and the backend side stays TCP so the PROXY line can be sent.
create=(elb create-load-balancer --load-balancer-name "$name"
  --listeners
  "Protocol=TCP,LoadBalancerPort=80,InstanceProtocol=TCP,InstancePort=$port"
  "Protocol=SSL,LoadBalancerPort=443,InstanceProtocol=TCP,InstancePort=$port,SSLCertificateId=$cert_arn")
if [ "${#subnets[@]}" -gt 0 ]; then create+=(--subnets "${subnets[@]}"); fi
if [ "${#zones[@]}" -gt 0 ]; then create+=(--availability-zones "${zones[@]}"); fi
if [ "${#sgs[@]}" -gt 0 ]; then create+=(--security-groups "${sgs[@]}"); fi
if [ "$internal" -eq 1 ]; then create+=(--scheme internal); fi
dns_name=""
gh_aws_value dns_name DNS_NAME "${create[@]}" --query DNSName --output text

# 2. PROXY v1 on every connection to the instance port: the policy, then its
#    attachment to PORT (a backend-server policy, not a listener policy).
gh_aws elb create-load-balancer-policy --load-balancer-name "$name" \
  --policy-name gatehouse-proxy-protocol --policy-type-name ProxyProtocolPolicyType \
  --policy-attributes AttributeName=ProxyProtocol,AttributeValue=true
gh_aws elb set-load-balancer-policies-for-backend-server --load-balancer-name "$name" \
  --instance-port "$port" --policy-names gatehouse-proxy-protocol

# 3. TLS 1.2 or later on 443, like gatehouse's own tls min_version default
#    (without this, an SSL listener made from the CLI allows TLS 1.0).
gh_aws elb create-load-balancer-policy --load-balancer-name "$name" \
  --policy-name gatehouse-tls --policy-type-name SSLNegotiationPolicyType \
  --policy-attributes "AttributeName=Reference-Security-Policy,AttributeValue=$ssl_policy"
gh_aws elb set-load-balancer-policies-of-listener --load-balancer-name "$name" \
  --load-balancer-port 443 --policy-names gatehouse-tls

# 4. Health check: plain HTTP GET /healthz on PORT. The ELB sends its health
#    checks WITHOUT a PROXY line even with the policy on; conf/elb.yaml's
#    `proxy_protocol: optional` serves such a connection from the trusted VPC
#    range like a direct one, and /healthz is the first route, so it is never
#    redirected. An HTTP check (not TCP:PORT) is what makes drain work: on
#    SIGTERM /healthz answers 503 and the instance leaves rotation within
#    Interval x UnhealthyThreshold + Timeout = 25 s = conf/elb.yaml's
#    drain_delay. (The other way: `proxy_protocol: v1` and a second, plain
#    listener for the health check only; one listener is simpler.)
gh_aws elb configure-health-check --load-balancer-name "$name" \
  --health-check "Target=HTTP:$port/healthz,Interval=10,Timeout=5,UnhealthyThreshold=2,HealthyThreshold=2"

# 5. Idle timeout (a WebSocket with no traffic for this long is cut by the
#    ELB: gatehouse's ping_interval must stay below it) and connection
#    draining (an instance leaving keeps its connections this long: at least
#    drain_delay + drain_timeout, so gatehouse closes them, not the ELB).
gh_aws elb modify-load-balancer-attributes --load-balancer-name "$name" \
  --load-balancer-attributes "{\"ConnectionSettings\":{\"IdleTimeout\":$idle_timeout},\"ConnectionDraining\":{\"Enabled\":true,\"Timeout\":$drain_seconds}}"

# 6. The instances, last: they get traffic only once everything above is set.
if [ "${#instances[@]}" -gt 0 ]; then
  gh_aws elb register-instances-with-load-balancer --load-balancer-name "$name" \
    --instances "${instances[@]}"
fi

if [ "$gh_dry_run" -eq 0 ]; then
  gh_note "done: $name is $dns_name; let the instances accept port $port only from the ELB's security group"
fi
