"""TF Serving: configs, the server command line, and a REST / gRPC client."""
