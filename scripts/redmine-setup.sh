#!/usr/bin/env bash
# Starts a local Redmine 5 (Debian's package, sqlite, thin) for the Redmine connector's live tests.
#
# Idempotent: installs Redmine only if missing, enables the REST API and gives the admin (user 1)
# a fixed API key, starts thin on 127.0.0.1:3300 only if nothing answers there, creates the
# project `wa-support` and a second user `agent` (a Developer in the project, with its own fixed
# API key, to write the agents' replies) when missing, and always ends by writing
# target/redmine-test.env, which `connectors/tests/redmine_live.rs` reads:
#   WABRIDGE_TEST_REDMINE_URL, WABRIDGE_TEST_REDMINE_KEY, WABRIDGE_TEST_REDMINE_PROJECT,
#   WABRIDGE_TEST_REDMINE_AGENT_KEY
# Must run as root (apt-get, Redmine's database). The keys are test keys for a server that only
# listens on loopback. Stop the server with: kill "$(cat target/redmine-server.pid)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${REDMINE_PORT:-3300}"
URL="http://127.0.0.1:${PORT}"
PROJECT=wa-support
ADMIN_KEY=0123456789abcdef0123456789abcdef01234567
AGENT_LOGIN=agent
AGENT_KEY=a9e17c0de0123456789abcdef0123456789abcde
ENV_FILE="${ROOT}/target/redmine-test.env"
LOG_FILE="${ROOT}/target/redmine-server.log"
PID_FILE="${ROOT}/target/redmine-server.pid"
REDMINE_DIR=/usr/share/redmine
DB=/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default
mkdir -p "${ROOT}/target"

log() { printf 'redmine-setup: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# HTTP status of a request with the admin key, 000 when nothing answers. Extra curl args follow.
status_of() {
    curl -s -o /dev/null -m 10 -w '%{http_code}' -H "X-Redmine-API-Key: ${ADMIN_KEY}" "$@" || true
}
# Body of a request with the admin key; fails on any non-2xx.
call() {
    local method="$1" path="$2"
    shift 2
    curl -sS -f -m 20 -X "${method}" -H "X-Redmine-API-Key: ${ADMIN_KEY}" \
        -H 'Content-Type: application/json' "$@" "${URL}${path}"
}
sql() { sqlite3 -batch -bail "${DB}" "$@"; }

# 1. Install when missing (about 30 s; the package migrates the sqlite DB and loads the default
#    trackers, statuses and roles).
installed() {
    [ "$(dpkg-query -W -f='${Status}\n' redmine redmine-sqlite thin sqlite3 jq curl 2>/dev/null \
        | grep -c 'install ok installed')" = 6 ]
}
if ! installed; then
    log "installing redmine, redmine-sqlite, thin (about 30 s)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        redmine redmine-sqlite thin sqlite3 jq curl >/dev/null
    installed || die "the packages did not install"
fi
[ -f "${DB}" ] || die "Redmine's database ${DB} is missing (dpkg-reconfigure redmine?)"

# 2. REST API on, and the admin's API key. A running Redmine re-reads its settings when the
#    newest updated_on is later than its last cache clear; a timestamp 2 s ahead (with
#    fractions) makes sure of that even when the cache was cleared within the same second.
SETTING_NOW="strftime('%Y-%m-%d %H:%M:%f', 'now', '+2 seconds')"
sql "INSERT INTO settings(name, value, updated_on)
       SELECT 'rest_api_enabled', '1', ${SETTING_NOW}
       WHERE NOT EXISTS (SELECT 1 FROM settings WHERE name = 'rest_api_enabled');
     UPDATE settings SET value = '1', updated_on = ${SETTING_NOW}
       WHERE name = 'rest_api_enabled' AND value <> '1';"
set_api_key() { # user id, key: the user's one API token becomes `key`
    local user="$1" key="$2"
    sql "DELETE FROM tokens WHERE user_id = ${user} AND action = 'api' AND value <> '${key}';
         INSERT INTO tokens(user_id, action, value, created_on, updated_on)
           SELECT ${user}, 'api', '${key}', datetime('now'), datetime('now')
           WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE action = 'api' AND value = '${key}');"
}
set_api_key 1 "${ADMIN_KEY}"

# 3. Start thin unless something already answers. setpriv execs (no fork), so the recorded pid
#    is thin's own.
code="$(status_of "${URL}/users/current.json")"
if [ "${code}" = "000" ]; then
    log "starting Redmine (thin) on ${URL} (log: ${LOG_FILE})"
    (
        cd "${REDMINE_DIR}"
        exec setsid setpriv --reuid=www-data --regid=www-data --init-groups \
            env HOME=/var/lib/redmine RAILS_ENV=production \
            thin start -e production -R config.ru -a 127.0.0.1 -p "${PORT}"
    ) >"${LOG_FILE}" 2>&1 </dev/null &
    echo $! > "${PID_FILE}"
fi

# 4. Wait for readiness (about 3 s cold; bounded at 120 s). A 403 means the running server
#    still has the REST API off in its settings cache: make it re-read them (once).
touched=0
for _ in $(seq 1 240); do
    code="$(status_of "${URL}/users/current.json")"
    [ "${code}" = "200" ] && break
    if [ "${code}" = "403" ] && [ "${touched}" = 0 ]; then
        sql "UPDATE settings SET updated_on = ${SETTING_NOW} WHERE name = 'rest_api_enabled';"
        touched=1
    fi
    if [ -f "${PID_FILE}" ] && ! kill -0 "$(cat "${PID_FILE}")" 2>/dev/null && [ "${code}" = "000" ]; then
        die "Redmine exited during start-up; see ${LOG_FILE}"
    fi
    sleep 0.5
done
[ "${code}" = "200" ] || die "Redmine did not become ready on ${URL} (last status ${code}); see ${LOG_FILE}"
log "Redmine ready on ${URL}"

# 5. The project, with issue tracking and the default trackers.
if [ "$(status_of "${URL}/projects/${PROJECT}.json")" != "200" ]; then
    trackers="$(call GET /trackers.json | jq -c '[.trackers[].id]')"
    call POST /projects.json -o /dev/null -d "$(jq -nc --arg id "${PROJECT}" --argjson trackers "${trackers}" \
        '{project: {name: "WhatsApp Support", identifier: $id, is_public: true,
                    enabled_module_names: ["issue_tracking"], tracker_ids: $trackers}}')"
    log "created project ${PROJECT}"
fi

# 6. The agent: a user with its own API key, a Developer in the project (may add public notes).
agent_id="$(call GET "/users.json?name=${AGENT_LOGIN}&status=" \
    | jq -r --arg login "${AGENT_LOGIN}" '[.users[] | select(.login == $login) | .id][0] // empty')"
if [ -z "${agent_id}" ]; then
    agent_id="$(call POST /users.json -d "$(jq -nc --arg login "${AGENT_LOGIN}" \
        '{user: {login: $login, firstname: "Alex", lastname: "Agent", mail: "agent@example.invalid",
                 password: "agent-password-1", mail_notification: "none"}}')" | jq -r '.user.id')"
    log "created user ${AGENT_LOGIN} (id ${agent_id})"
fi
set_api_key "${agent_id}" "${AGENT_KEY}"
if ! call GET "/projects/${PROJECT}/memberships.json?limit=100" \
        | jq -e --argjson user "${agent_id}" 'any(.memberships[]; .user.id? == $user)' >/dev/null; then
    role_id="$(call GET /roles.json | jq -r '[.roles[] | select(.name == "Developer") | .id][0] // .roles[0].id')"
    call POST "/projects/${PROJECT}/memberships.json" -o /dev/null \
        -d "{\"membership\":{\"user_id\":${agent_id},\"role_ids\":[${role_id}]}}"
    log "made ${AGENT_LOGIN} a member of ${PROJECT} (role ${role_id})"
fi
agent_code="$(curl -s -o /dev/null -m 10 -w '%{http_code}' -H "X-Redmine-API-Key: ${AGENT_KEY}" \
    "${URL}/users/current.json" || true)"
[ "${agent_code}" = "200" ] || die "the agent's API key is refused (HTTP ${agent_code})"

cat > "${ENV_FILE}.tmp" <<EOF
WABRIDGE_TEST_REDMINE_URL=${URL}
WABRIDGE_TEST_REDMINE_KEY=${ADMIN_KEY}
WABRIDGE_TEST_REDMINE_PROJECT=${PROJECT}
WABRIDGE_TEST_REDMINE_AGENT_KEY=${AGENT_KEY}
EOF
mv "${ENV_FILE}.tmp" "${ENV_FILE}"
log "wrote ${ENV_FILE}"
echo "export WABRIDGE_TEST_REDMINE_URL=${URL}"
echo "export WABRIDGE_TEST_REDMINE_KEY=${ADMIN_KEY}"
echo "export WABRIDGE_TEST_REDMINE_PROJECT=${PROJECT}"
echo "export WABRIDGE_TEST_REDMINE_AGENT_KEY=${AGENT_KEY}"
