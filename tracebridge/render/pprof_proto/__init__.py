"""pprof's ``profile.proto`` and the module ``protoc`` generates from it.

``profile.proto`` is google/pprof's ``proto/profile.proto`` unchanged
(commit b9395ee17fa0d0013c3fd96ac9482318422ac337); ``profile_pb2.py`` is
generated, never edited: ``scripts/generate_pprof_proto.sh`` regenerates it
with grpcio-tools' protoc, and tests/render/test_pprof.py checks that the
committed module is what that command writes.  It needs the ``protobuf``
runtime (``pip install 'tracebridge[pprof]'``) of the version it names.
"""
