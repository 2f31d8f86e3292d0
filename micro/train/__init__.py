"""Self-play actors, replay, learner, checkpoint store: `micro train`."""
