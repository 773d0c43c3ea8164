"""Staged rollouts: a canary share of the gateways first, then the rest, halted and rolled back on failure.

- ``plan``: stages, thresholds, deadlines and the stable canary choice;
- ``verdict``: a stage's verdict from per-gateway deployment state;
- ``store``: rollouts, stages, gateways and decisions as stored (migration 13);
- ``engine``: ``StagedRollouts`` (start, advance, halt, resume, roll back, cancel);
- ``completion``: the registry ``Rollout`` that switches production at the end without re-directing anyone;
- ``automation``: ``start_rollout`` for automated retraining and A/B conclusions;
- ``worker``: ``RolloutWorker``, advancing running rollouts beside ``iotsphere cloud serve``;
- ``cli``: ``iotsphere rollouts``.
"""
