"""The evaluation harness: EcoAlign against its baselines on one engine, model and evaluator, cost and safety side
by side (``ecoalign eval``), the simulation that isolates the economics from model quality, named studies, plots
and the policy autotuner (``ecoalign tune``)."""
