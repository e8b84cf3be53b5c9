#!/usr/bin/env bash
# layers.sh -- no part includes a part above it (scripts/check-layers).
if "${IG_SOURCE_DIR:?}/scripts/check-layers"; then echo "layers: 1 passed, 0 failed"; else
  echo "layers: 0 passed, 1 failed"; exit 1; fi
