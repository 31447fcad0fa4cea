#!/usr/bin/env bash
# Starts a local Request Tracker 5 (REST2) for the RT connector's live tests.
#
# Idempotent: installs RT only if missing, rewrites the site config, starts rt-server on
# 127.0.0.1:8181 only if nothing answers there, reuses a still-valid token, and always ends by
# writing target/rt-test.env, which `connectors/tests/rt_live.rs` reads:
#   WABRIDGE_TEST_RT_URL, WABRIDGE_TEST_RT_TOKEN, WABRIDGE_TEST_RT_USERNAME, WABRIDGE_TEST_RT_PASSWORD
# Must run as root (apt-get, /etc/request-tracker5). Stop the server with: kill "$(cat target/rt-server.pid)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${RT_PORT:-8181}"
URL="http://127.0.0.1:${PORT}"
ENV_FILE="${ROOT}/target/rt-test.env"
LOG_FILE="${ROOT}/target/rt-server.log"
PID_FILE="${ROOT}/target/rt-server.pid"
SITE_CONFIG=/etc/request-tracker5/RT_SiteConfig.d/99-wabridge-test.pm
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
mkdir -p "${ROOT}/target"

log() { printf 'rt-setup: %s\n' "$*" >&2; }

status_of() { # HTTP status of an authenticated readiness probe, 000 when nothing answers
    curl -s -o /dev/null -m 10 -w '%{http_code}' "$@" "${URL}/REST/2.0/queues/all" || true
}

# 1. Install when missing.
if ! dpkg-query -W -f='${Status}' request-tracker5 rt5-db-sqlite rt5-standalone rt5-clients 2>/dev/null \
        | grep -q 'install ok installed.*install ok installed.*install ok installed.*install ok installed'; then
    log "installing request-tracker5 (about 30 s)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        request-tracker5 rt5-db-sqlite rt5-standalone rt5-clients >/dev/null
fi

# 2. Site config (the Debian defaults are WebBaseURL http://vm and WebPath /rt).
cat > "${SITE_CONFIG}.tmp" <<EOF
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, ${PORT});
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:${PORT}');
Set(\$LogToSTDERR, 'warning');
Set(\$MailCommand, 'testfile');
EOF
if ! cmp -s "${SITE_CONFIG}.tmp" "${SITE_CONFIG}" 2>/dev/null; then
    mv "${SITE_CONFIG}.tmp" "${SITE_CONFIG}"
    CONFIG_CHANGED=1
else
    rm -f "${SITE_CONFIG}.tmp"
    CONFIG_CHANGED=0
fi

# 3. Start the server unless something already answers.
code="$(status_of -u root:password)"
if [ "${code}" = "000" ]; then
    log "starting rt-server on ${URL} (log: ${LOG_FILE})"
    setsid "${RT_SERVER}" --port "${PORT}" --max-workers 2 >"${LOG_FILE}" 2>&1 < /dev/null &
    echo $! > "${PID_FILE}"
elif [ "${CONFIG_CHANGED}" = "1" ]; then
    log "warning: the site config changed but a server already answers on ${URL}; restart it to apply"
fi

# 4. Wait for readiness (/REST/2.0/ itself is 404 in 5.0.3, so probe queues/all).
for _ in $(seq 1 120); do
    code="$(status_of -u root:password)"
    [ "${code}" = "200" ] && break
    sleep 0.5
done
if [ "${code}" != "200" ]; then
    log "RT did not become ready on ${URL} (last status ${code}); see ${LOG_FILE}"
    exit 1
fi
log "RT ready on ${URL}"

# 5. A token for root: reuse the recorded one while it still works, else create one.
TOKEN=""
if [ -f "${ENV_FILE}" ]; then
    TOKEN="$(sed -n 's/^WABRIDGE_TEST_RT_TOKEN=//p' "${ENV_FILE}")"
    if [ -n "${TOKEN}" ] && [ "$(status_of -H "Authorization: token ${TOKEN}")" != "200" ]; then
        TOKEN=""
    fi
fi
if [ -z "${TOKEN}" ]; then
    TOKEN="$(perl -I/usr/share/request-tracker5/lib -e '
        use strict; use warnings;
        use RT; RT::LoadConfig(); RT::Init();
        my $root = RT::User->new(RT->SystemUser);
        $root->Load("root") or die "no root user\n";
        my $token = RT::AuthToken->new(RT::CurrentUser->new($root));
        my ($id, $msg, $auth) = $token->Create(Owner => $root->Id, Description => "wabridge-ci");
        die "token: $msg\n" unless $id;
        print $auth;
    ')"
    [ "$(status_of -H "Authorization: token ${TOKEN}")" = "200" ] || { log "new token rejected"; exit 1; }
    log "created an auth token for root"
fi

cat > "${ENV_FILE}" <<EOF
WABRIDGE_TEST_RT_URL=${URL}
WABRIDGE_TEST_RT_TOKEN=${TOKEN}
WABRIDGE_TEST_RT_USERNAME=root
WABRIDGE_TEST_RT_PASSWORD=password
EOF
log "wrote ${ENV_FILE}"
echo "export WABRIDGE_TEST_RT_URL=${URL}"
echo "export WABRIDGE_TEST_RT_TOKEN=${TOKEN}"
