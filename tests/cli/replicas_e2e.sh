#!/usr/bin/env bash
# replicas_e2e.sh -- three replicas on real PostgreSQL and Redis servers
# (tests/js/replicas_e2e.mjs says what it checks). Never skipped: a missing
# server is a failure.
exec node "${IG_SOURCE_DIR:?}/tests/js/replicas_e2e.mjs" "${IG_BIN:?}" "${IG_SOURCE_DIR:?}"
