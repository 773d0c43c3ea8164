"""``iotsphere demo``: the whole loop on one machine, from cold-start training to live predictions."""
