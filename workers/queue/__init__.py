"""The queue plumbing: dramatiq broker and actors, publishing, the worker supervisor, the
ingress consumer, our Redis streams, the producer client and the embedded Redis."""
