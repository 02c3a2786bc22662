#!/usr/bin/env bash
# Black-box demo of the re-authentication window against a running local
# stack. It uses only .local/dev.env, `make -s token`, `go run
# ./scripts/totp` (an authenticator app's code) and the documented routes:
#
#   1. a bearer token alone does not open a credential (401 reauth_required)
#   2. re-authenticate with password + TOTP code (200, a re-auth token)
#   3. with both tokens the credential is shown, with expires_at
#   4. once the window has passed, the same re-auth token is refused again
#
# Start the stack with a short window, then run this in another terminal:
#
#   REAUTH_TTL=20s make run
#   scripts/access-demo.sh
#
# AS=admin uses the platform-admin demo user instead of the support-team one.
set -euo pipefail
cd "$(dirname "$0")/.."

env_file=.local/dev.env
[ -r "$env_file" ] || { echo "no $env_file: start the stack first (REAUTH_TTL=20s make run)" >&2; exit 1; }
# shellcheck disable=SC1090
set -a; . "$env_file"; set +a

if [ "${AS:-support}" = admin ]; then
  user=$ADMIN_USER password=$ADMIN_PASSWORD secret=$ADMIN_TOTP_SECRET
else
  user=$SUPPORT_USER password=$SUPPORT_PASSWORD secret=$SUPPORT_TOTP_SECRET
fi
tenant=${DEMO_TENANT_IDS%%,*}
creds=/api/v1/platform-admin/tenants/$tenant/smtp-credentials

status='' body=''
# call METHOD PATH [curl args...]: sets status and body.
call() {
  local out
  out=$(curl -sS -X "$1" -w '\n%{http_code}' "${@:3}" "$API_URL$2")
  status=${out##*$'\n'}
  body=${out%$'\n'*}
}
# field NAME: the first string field NAME of the last body.
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$body" | head -n1; }
step() { printf '\n== %s\n' "$*"; }
expect() { # STATUS [ERROR_CODE]
  if [ "$status" != "$1" ] || { [ -n "${2:-}" ] && [ "$(field code)" != "$2" ]; }; then
    echo "FAIL: got $status $body; want $1 ${2:-}" >&2
    exit 1
  fi
  echo "   -> $status ${2:-}"
}
reauth() {
  local code
  code=$(go run ./scripts/totp "$secret")
  # The body goes through stdin, so the password is not on a command line.
  call POST /api/v1/platform-admin/reauth -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary @- \
    <<<"{\"password\":\"$password\",\"totp_code\":\"$code\"}"
}

step "bearer token for $user (make -s token)"
token=$(make -s token USER="$user")
echo "   -> ${#token} characters"

step "GET $creds without X-Reauth-Token"
call GET "$creds" -H "Authorization: Bearer $token"
expect 401 reauth_required

step "POST /api/v1/platform-admin/reauth with the password and the current TOTP code"
reauth
if [ "$status" = 401 ] && [ "$(field code)" = reauth_failed ]; then
  # Vault accepts each code once: a run in the same 30 s step used it.
  wait=$((30 - $(date +%s) % 30 + 1))
  echo "   -> 401 reauth_failed (this code was used already); next code in ${wait}s"
  sleep "$wait"
  reauth
fi
expect 200
reauth_token=$(field reauth_token)
expires_at=$(field expires_at)
echo "   -> re-auth token valid until $expires_at"

step "GET $creds with X-Reauth-Token"
call GET "$creds" -H "Authorization: Bearer $token" -H "X-Reauth-Token: $reauth_token"
expect 200
shown=$(field password)
echo "   -> username $(field username), password of ${#shown} characters (not printed), view closes at $(field expires_at)"
[ "$(field expires_at)" = "$expires_at" ] || { echo "FAIL: expires_at is not the re-auth token's" >&2; exit 1; }

left=$(( $(date -u -d "$expires_at" +%s) - $(date +%s) ))
if [ "$left" -gt 120 ]; then
  echo "the window closes in ${left}s; start the stack with REAUTH_TTL=20s make run to see it close" >&2
  exit 2
fi
step "wait $((left + 1))s for the window to close"
sleep $((left > 0 ? left + 1 : 1))

step "GET $creds with the same X-Reauth-Token after the window"
call GET "$creds" -H "Authorization: Bearer $token" -H "X-Reauth-Token: $reauth_token"
expect 401 reauth_required

printf '\nPASS: refused without re-auth, shown after re-auth, refused again after %s\n' "$expires_at"
