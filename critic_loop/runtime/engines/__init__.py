"""Engine implementations: the scripted test engine and vLLM's in-process `AsyncLLM`."""
