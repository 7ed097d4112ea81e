"""The suite's command-line options, a pytest plugin of their own that the package's entry point
registers: pytest parses the command line before it reads a conftest it is not given as a path, so
with ``pytest --pyargs claims --model vgg16`` (an installed suite) only a registered plugin's options
are known. The rest of the plugin (:mod:`claims.session.plugin`) is loaded by the claims' conftest."""
from __future__ import annotations

import cnn_core
from claims.session.options import DEFAULT_MODELS
from cnn_core.fixtures import ENV as FIXTURES_ENV
from cnn_core.fixtures import FETCH, PHOTOS
from cnn_core.models import TINY_VGG


def pytest_addoption(parser):
    group = parser.getgroup("cnn-claims")
    group.addoption("--model", default="default",
                    help="model(s) to check: a torchvision name, a comma list, 'all', or 'default' "
                         f"({', '.join(DEFAULT_MODELS)})")
    group.addoption("--weights", default="auto",
                    help="none | imagenet (downloads once) | auto (ImageNet if already cached, else random) | PATH to a state_dict")
    group.addoption("--preprocessing", default=None, metavar="RECIPE",
                    help="how the selected models' weights were trained to be fed: a torchvision weights name "
                         "(IMAGENET1K_V1), a timm pretrained tag (timm:resnet50.a1_in1k), or numbers "
                         "(resize=256,crop=224,interpolation=bilinear,mean=0.485/0.456/0.406,std=0.229/0.224/0.225); "
                         "default: the weights' own (a file named like a torchvision checkpoint: that checkpoint's)")
    group.addoption("--image", default=cnn_core.DEFAULT_IMAGE,
                    help="image for the claims: a path, a URL, or sample:cat (scikit-image's photo, the default)")
    group.addoption("--device", default="cpu", help="cpu | cuda | auto")
    group.addoption("--images", default=None, metavar="DIR|GLOB",
                    help="a folder or glob of images: block 3's sparsity claim is also measured over all of them, "
                         "with a 95%% interval")
    group.addoption("--report", nargs="?", const="reports/latest", default=None, metavar="DIR",
                    help="write the claims report (index.html, claims.json, figures) to DIR (default reports/latest)")
    group.addoption("--bench-compile", action="store_true",
                    help="benchmarks: also time torch.compile'd forward passes (compiling takes minutes)")
    group.addoption("--fixtures-dir", default=None,
                    help=f"folder holding {PHOTOS}/ (the learned claims' photos) and {TINY_VGG}/ (CNN Explainer's "
                         f"trained model); default: ${FIXTURES_ENV}, else the cache folder that `{FETCH}` fills")
    group.addoption("--record-expectations", action="store_true",
                    help="write this run's verdicts and values into claims/expectations.toml (the regression gate)")
    group.addoption("--record-nulls", action="store_true",
                    help="measure the random initialisations of every trained model's architecture afresh and write "
                         "them into claims/nulls.json (slow: a random model per null seed each)")
    group.addoption("--mutants", action="store_true",
                    help="the mutation check: run pytest claims --model vgg16 on copies with one wrong edit each "
                         "(claims/tools/mutants.py) and print which claims kill each; runs nothing else")
