"""Executors: where a sweep's tasks train. ``task`` is the unit of work and what one returns;
``local`` trains in this process or a pool of spawned processes; ``ray`` on a Ray cluster.

Each executor is ``run_*(tasks, ..., emit, started, [progress,] should_stop)``: ``started(i)`` when
task ``i`` begins, ``progress(i, epoch, epochs, loss, accuracy)`` after each epoch where the executor
can report it, ``emit(i, results)`` when it ends (a failure as 'error' results, never a raise), and
no new task once ``should_stop()`` is true.
"""
