"""Runtime services of the trainer: device and precision, DDP, checkpoints, control, watchdog."""
