"""What runs a pytest session of the claims: the pytest plugin (options, parametrization, fixtures),
the run's options as one value, the model zoo, the fetch of the fixtures, and the image-folder runner."""
