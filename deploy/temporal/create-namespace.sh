#!/bin/sh
# whistle's namespace on the compose cluster, made once (30 days of closed-workflow retention).
set -eu
temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NAMESPACE" --retention 30d
