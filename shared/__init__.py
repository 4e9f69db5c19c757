"""The project's shared package: event contracts and the one implementation of each mechanism
(append, relay, consume, replay) that all three services use."""
