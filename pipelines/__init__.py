"""The product on top of the world model: four roles, one subpackage each.

* :mod:`pipelines.search`: the planner and its stages, the sub-goals (library, linear and
  rational fits, separation, shapes), the finisher and the ``Result``.
* :mod:`pipelines.interface`: what a user calls: ``InductionPipeline``, ``ProgramRegressor``,
  the data checks and ``suggest``.
* :mod:`pipelines.learning`: traces, the training CLI, on-policy rounds (``induce improve``)
  and ``induce evaluate``.
* :mod:`pipelines.bench`: ``induce bench`` and ``induce bench-loop``.

Imports point one way: search <- interface <- learning, and the bench over all three. The
command line (:mod:`pipelines.cli`) wires every role's commands; :mod:`pipelines.shipped` (the
package's own files), :mod:`pipelines.parallel` (one executor) and :mod:`pipelines.sign_test`
(one paired test) serve them all.
"""
