#!/usr/bin/env bash
# gateway_e2e.sh -- imagegate serve end to end against emulators in their own
# processes (tests/js/gateway_e2e.mjs says what it checks).
exec node "${IG_SOURCE_DIR:?}/tests/js/gateway_e2e.mjs" "${IG_BIN:?}"
