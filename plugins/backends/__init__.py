"""Built-in latency backends: one parameterised family per runtime (PyTorch, ONNX Runtime, OpenVINO)."""
