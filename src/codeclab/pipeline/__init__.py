"""The experiment's phases: validation, execution, verification and analysis."""
