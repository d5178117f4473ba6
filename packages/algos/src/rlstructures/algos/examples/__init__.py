"""Complex agents written on the rlstructures APIs, each a script you can read and copy.

Run one with ``python -m rlstructures.algos.examples.NAME`` (or by path,
``python packages/algos/examples/NAME.py`` from a clone: ``packages/algos/examples`` is a
link to this folder). The tutorial, in reading order, is in the package README:

* `tabular_q`: a numpy-only agent (tabular Q-learning) run by a ``MultiProcessBatcher``;
* `recurrent_ppo`: a GRU policy trained by PPO on CartPole with the velocities hidden;
* `transformer`: attention over the last k observations with ``require_history()``;
* `multitask`: one batcher, one task (``env_info``) and one behaviour (``agent_info``) per env;
* `hierarchical`: a manager choosing options, a worker acting on them, DuckDB on the export.
"""
