"""The profile: weighted stacks of frames (:mod:`.model`), addresses resolved to module functions (:mod:`.resolve`), frame labels (:mod:`.labels`) and the merged call tree (:mod:`.flametree`).

What every reader builds and every renderer draws.  May import
:mod:`tracebridge.image` and :mod:`tracebridge.support`; never a reader or a
renderer.
"""
