#!/bin/sh
# Regenerate tracebridge/render/pprof_proto/profile_pb2.py from profile.proto with
# grpcio-tools' bundled protoc (pip install grpcio-tools).  The generated module
# names the protobuf runtime it needs: keep pyproject.toml's `pprof` extra at least
# that version.  Run from anywhere; PYTHON picks the interpreter (default python3).
set -eu
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" -m grpc_tools.protoc -I . --python_out=. tracebridge/render/pprof_proto/profile.proto
