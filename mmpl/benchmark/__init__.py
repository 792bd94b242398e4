"""mmpl's benchmarks, one meaning per module:

* :mod:`.speed`: speed, memory and text-encoder work of a method against
  the per-image formulation of the original code
  (``tools/analysis_tools/benchmark.py``);
* :mod:`.plan`: the runs of an accuracy benchmark, configs x datasets x
  shots x seeds (``tools/run_benchmark.py``);
* :mod:`.shapes`: the embedded toy benchmark, generated coloured shapes
  and the config rewrite that runs any method on them (``tools/demo.py``).

The modules are imported on use (``from mmpl.benchmark.speed import ...``):
none of them registers anything.
"""
