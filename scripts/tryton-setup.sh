#!/usr/bin/env bash
# Starts a local Tryton 8.2 (trytond from PyPI, sqlite, party + sale) for the Tryton connector's
# live tests.
#
# Idempotent: installs python3-venv when missing, creates the venv /opt/wabridge-tryton with
# pinned versions when missing or different, creates the sqlite database `wabridge` under
# target/tryton/ with the modules party and sale (and their dependencies) when missing, starts
# trytond on 127.0.0.1:8000 only if nothing answers there, makes sure the admin has a company
# (needed to create sales) with the currency OMR (3 digits), and always ends by writing
# target/tryton-test.env, which `connectors/tests/tryton_live.rs` reads:
#   WABRIDGE_TEST_TRYTON_URL, WABRIDGE_TEST_TRYTON_DATABASE, WABRIDGE_TEST_TRYTON_USERNAME,
#   WABRIDGE_TEST_TRYTON_PASSWORD
# Must run as root (apt-get, /opt). The password is a test password for a server that only
# listens on loopback. Stop the server with: kill "$(cat target/tryton-server.pid)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${TRYTON_PORT:-8000}"
URL="http://127.0.0.1:${PORT}"
DATABASE=wabridge
USERNAME=admin
PASSWORD=wabridge-tryton-admin-1
VENV=/opt/wabridge-tryton
DATA="${ROOT}/target/tryton"
CONF="${DATA}/trytond.conf"
DB_DIR="${DATA}/db"
ENV_FILE="${ROOT}/target/tryton-test.env"
LOG_FILE="${ROOT}/target/tryton-server.log"
PID_FILE="${ROOT}/target/tryton-server.pid"
# Versions that work together (checked with `pip index versions`): Tryton 8.2 and its
# dependencies as pip resolved them, plus `phonenumbers`, the optional dependency of the party
# module that formats numbers and fills `value_compact` with E.164 (what the connector searches).
REQUIREMENTS="
trytond==8.2.1
trytond-party==8.2.0
trytond-sale==8.2.0
trytond-account==8.2.1
trytond-account-invoice==8.2.0
trytond-account-invoice-stock==8.2.0
trytond-account-product==8.2.0
trytond-company==8.2.0
trytond-country==8.2.0
trytond-currency==8.2.0
trytond-product==8.2.0
trytond-stock==8.2.1
phonenumbers==9.0.43
argon2-cffi==25.1.0
argon2-cffi-bindings==26.2.0
cffi==2.1.1
defusedxml==0.7.1
Genshi==0.7.12
lxml==6.1.3
MarkupSafe==3.0.4
polib==1.2.0
puremagic==1.30
pwdlib==0.3.1
pycparser==3.12
python-dateutil==4.0.0
python-sql==1.8.1
python-stdnum==2.2
relatorio==1.0.0
simpleeval==1.0.8
tzdata==2026.6
Werkzeug==3.1.9
"
mkdir -p "${ROOT}/target" "${DB_DIR}"

log() { printf 'tryton-setup: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# 1. python3-venv (Debian's python3; pyenv or other pythons are not relied upon).
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-venv curl >/dev/null
fi
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"

# 2. The venv, (re)installed when the pinned list changed (about 15 s).
STAMP="${VENV}/.wabridge-requirements"
WANTED="$(printf '%s\n' ${REQUIREMENTS} | sha256sum | cut -d' ' -f1)"
if [ ! -x "${VENV}/bin/trytond" ] || [ "$(cat "${STAMP}" 2>/dev/null)" != "${WANTED}" ]; then
    log "installing Tryton 8.2.1 into ${VENV} (about 15 s)"
    /usr/bin/python3 -m venv "${VENV}"
    printf '%s\n' ${REQUIREMENTS} > "${VENV}/requirements.txt"
    "${VENV}/bin/pip" install -q --disable-pip-version-check -r "${VENV}/requirements.txt"
    printf '%s\n' "${WANTED}" > "${STAMP}"
fi
PY="${VENV}/bin/python"

# 3. Configuration: sqlite files under target/tryton/db, listening on loopback only.
cat > "${CONF}.tmp" <<EOF
[database]
uri = sqlite://
path = ${DB_DIR}
[web]
listen = 127.0.0.1:${PORT}
EOF
mv "${CONF}.tmp" "${CONF}"

# Answers 200 when a Tryton server is listening (the version call needs no login).
version_status() {
    curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"id":0,"method":"common.server.version","params":[]}' "${URL}/rpc/" || true
}

# 4. The database: created and initialised (about 10 s), then party and sale activated with
#    their dependencies (about 30 s). A marker records success; a half-made database is redone.
MARKER="${DB_DIR}/.${DATABASE}.ready"
if [ ! -f "${MARKER}" ]; then
    [ "$(version_status)" = "000" ] || die "a server answers on ${URL} but the database \
${DATABASE} is not initialised; stop it first (kill \"\$(cat ${PID_FILE})\")"
    log "creating database ${DATABASE} with party and sale (about 40 s)"
    rm -f "${DB_DIR}/${DATABASE}.sqlite"
    touch "${DB_DIR}/${DATABASE}.sqlite"
    passfile="$(mktemp)"
    trap 'rm -f "${passfile}"' EXIT
    printf '%s\n' "${PASSWORD}" > "${passfile}"
    TRYTONPASSFILE="${passfile}" "${VENV}/bin/trytond-admin" -c "${CONF}" -d "${DATABASE}" \
        --all --email admin@example.invalid >"${DATA}/admin.log" 2>&1 \
        || die "trytond-admin --all failed; see ${DATA}/admin.log"
    "${VENV}/bin/trytond-admin" -c "${CONF}" -d "${DATABASE}" -u party sale \
        --activate-dependencies >>"${DATA}/admin.log" 2>&1 \
        || die "activating party and sale failed; see ${DATA}/admin.log"
    touch "${MARKER}"
fi

# 5. Start trytond unless something answers. Without `-d` the first login fails (the pool is
#    not loaded). setsid execs (no fork), so the recorded pid is trytond's own.
if [ "$(version_status)" = "000" ]; then
    log "starting trytond on ${URL} (log: ${LOG_FILE})"
    (
        exec setsid "${VENV}/bin/trytond" -c "${CONF}" -d "${DATABASE}"
    ) >"${LOG_FILE}" 2>&1 </dev/null &
    echo $! > "${PID_FILE}"
fi

# 6. Readiness (about 3 s cold; bounded at 60 s).
code=000
for _ in $(seq 1 120); do
    code="$(version_status)"
    [ "${code}" = "200" ] && break
    if [ -f "${PID_FILE}" ] && ! kill -0 "$(cat "${PID_FILE}")" 2>/dev/null && [ "${code}" = "000" ]; then
        die "trytond exited during start-up; see ${LOG_FILE}"
    fi
    sleep 0.5
done
[ "${code}" = "200" ] || die "Tryton did not become ready on ${URL} (last status ${code}); see ${LOG_FILE}"
log "Tryton ready on ${URL}"

# 7. A company with the currency OMR for the admin (a sale needs both), over JSON-RPC as a
#    user would; each step only when missing.
TRYTON_URL="${URL}" TRYTON_DB="${DATABASE}" TRYTON_USER="${USERNAME}" TRYTON_PASSWORD="${PASSWORD}" \
"${PY}" - <<'PYTHON'
import base64, json, os, sys, urllib.request

url = f"{os.environ['TRYTON_URL']}/{os.environ['TRYTON_DB']}/rpc/"
user = os.environ["TRYTON_USER"]
auth = None

def rpc(method, *params):
    body = json.dumps({"id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    if auth:
        request.add_header("Authorization", f"Session {auth}")
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if "error" in answer:
        sys.exit(f"tryton-setup: {method}: {answer['error']}")
    return answer["result"]

user_id, session, _ = rpc("common.db.login", user, {"password": os.environ["TRYTON_PASSWORD"]}, "en")
auth = base64.b64encode(f"{user}:{user_id}:{session}".encode()).decode()

currency = rpc("model.currency.currency.search", [["code", "=", "OMR"]], 0, 1, None, {})
if not currency:
    currency = rpc("model.currency.currency.create", [{
        "name": "Omani Rial", "code": "OMR", "symbol": "OMR", "digits": 3,
        "rounding": {"__class__": "Decimal", "decimal": "0.001"}}], {})
    print("tryton-setup: created the currency OMR", file=sys.stderr)
company = rpc("model.company.company.search", [["party.name", "=", "Wabridge Test Shop"]], 0, 1, None, {})
if not company:
    party = rpc("model.party.party.create", [{"name": "Wabridge Test Shop"}], {})
    company = rpc("model.company.company.create", [{"party": party[0], "currency": currency[0]}], {})
    print("tryton-setup: created the company Wabridge Test Shop", file=sys.stderr)
current = rpc("model.res.user.read", [user_id], ["company", "companies"], {})[0]
if current["company"] != company[0] or company[0] not in current["companies"]:
    rpc("model.res.user.write", [user_id], {"companies": [["add", company]], "company": company[0]}, {})
    print("tryton-setup: made it the admin's company", file=sys.stderr)
PYTHON

cat > "${ENV_FILE}.tmp" <<EOF
WABRIDGE_TEST_TRYTON_URL=${URL}
WABRIDGE_TEST_TRYTON_DATABASE=${DATABASE}
WABRIDGE_TEST_TRYTON_USERNAME=${USERNAME}
WABRIDGE_TEST_TRYTON_PASSWORD=${PASSWORD}
EOF
mv "${ENV_FILE}.tmp" "${ENV_FILE}"
log "wrote ${ENV_FILE}"
echo "export WABRIDGE_TEST_TRYTON_URL=${URL}"
echo "export WABRIDGE_TEST_TRYTON_DATABASE=${DATABASE}"
echo "export WABRIDGE_TEST_TRYTON_USERNAME=${USERNAME}"
echo "export WABRIDGE_TEST_TRYTON_PASSWORD=${PASSWORD}"
