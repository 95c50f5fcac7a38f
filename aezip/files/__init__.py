"""Files and formats: the .aez container and header, model files, dataset readers and writers, safe writes."""
