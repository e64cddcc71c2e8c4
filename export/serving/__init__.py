"""TF Serving: the model server's configs and its command line (serve.sh). The client is
`wavegrad_tf.vocoders.tf_serving`."""
