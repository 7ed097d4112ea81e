"""The mutation check: does ``pytest claims`` notice when the code or the model is wrong?

    pytest claims --mutants

copies the project once per mutant, applies one small wrong edit (to ``cnn_core`` or to how a
model is built), runs ``pytest claims --model vgg16`` on the copy and prints which claim tests
fail: the mutant's killers. A mutant no claim kills is a hole in the suite, and the check fails.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    file: str  # relative to the project root
    old: str  # must occur exactly once in ``file``
    new: str

    def apply(self, root: Path) -> None:
        path = root / self.file
        text = path.read_text()
        if text.count(self.old) != 1:
            raise ValueError(f"mutant {self.name}: its text occurs {text.count(self.old)} times in {self.file}, not once")
        path.write_text(text.replace(self.old, self.new))


_BUILT = "    return with_card(model.to(target).eval(), card)\n"


def _vgg16_edit(edit: str) -> str:
    return f'    if name == "vgg16":\n        {edit}\n' + _BUILT


MUTANTS = (
    Mutant("no-normalisation", "preprocess leaves out Normalize(mean, std)", "cnn_core/images.py",
           "        transforms.Normalize(mean=normalization.mean, std=normalization.std),\n", ""),
    Mutant("bgr", "preprocess returns the channels in B, G, R order", "cnn_core/images.py",
           "    return transform(image).unsqueeze(0)\n", "    return transform(image).flip(0).unsqueeze(0)\n"),
    Mutant("no-centre-crop", "preprocess leaves out CenterCrop", "cnn_core/images.py",
           "        transforms.CenterCrop(size),\n", ""),
    Mutant("corner-crop", "preprocess crops the top-left corner, same size, instead of the centre", "cnn_core/images.py",
           "        transforms.CenterCrop(size),\n",
           "        transforms.Lambda(lambda image: image.crop((0, 0, size, size))),\n"),
    Mutant("capture-without-copy", "capture keeps a layer's output without copying it before an in-place op",
           "cnn_core/activations.py",
           "kept = output.detach().clone() if module in copy else output.detach()", "kept = output.detach()"),
    Mutant("receptive-field-offset", "the analytic field's start ignores the jump (padding not scaled by it)",
           "cnn_core/receptive.py", "axis.first - padding * axis.jump", "axis.first - padding"),
    Mutant("pool1-3x3-s2-p1", "VGG16's pool1 is a 3x3 max pool, stride 2, padding 1 (same output size)",
           "cnn_core/models.py", _BUILT, _vgg16_edit("model.features[4] = nn.MaxPool2d(3, 2, 1)")),
    Mutant("fill-ignores-normalisation", "fill='mean' is computed for ImageNet normalisation whatever the model's",
           "cnn_core/images.py",
           "view(1, 3, 1, 1), normalization)\n", "view(1, 3, 1, 1), IMAGENET)\n"),
    Mutant("conv2_2-padding-0", "VGG16's conv2_2 (features[7]) has padding 0", "cnn_core/models.py",
           _BUILT, _vgg16_edit("model.features[7].padding = (0, 0)")),
)


def _copy_project(root: Path, into: Path) -> Path:
    """The files git knows (tracked, and untracked but not ignored), as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def _failures(junit: Path) -> list[str]:
    """The failing tests' names (file::test, parameters dropped) in a JUnit XML report."""
    if not junit.is_file():
        return []
    names = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            name = f"{case.get('file') or case.get('classname', '').replace('.', '/') + '.py'}::{case.get('name').split('[')[0]}"
            if name not in names:
                names.append(name)
    return names


def run_mutant(root: Path, mutant: Mutant | None, pytest_args: list[str]) -> tuple[list[str], int, float]:
    """(failing claim tests, pytest's exit code, seconds) of ``pytest claims`` on a mutated copy."""
    with tempfile.TemporaryDirectory(prefix="cnn-claims-mutant-") as folder:
        copy = _copy_project(root, Path(folder))
        if mutant is not None:
            mutant.apply(copy)
        junit = copy / "mutant.xml"
        started = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider",
                               f"--junitxml={junit}", *pytest_args], cwd=copy, capture_output=True).returncode
        return _failures(junit), code, time.perf_counter() - started


def mutation_table(root: Path, pytest_args: list[str], write=print) -> bool:
    """Runs the unmutated copy, then every mutant; prints a row per mutant; True when all are killed."""
    killers, code, seconds = run_mutant(root, None, pytest_args)
    write(f"cnn-claims mutants: unmutated copy: exit {code}, {len(killers)} failing tests, {seconds:.0f} s")
    if code != 0:
        write("cnn-claims mutants: the unmutated suite does not pass, so no mutant can be judged: " + ", ".join(killers))
        return False
    all_killed = True
    for mutant in MUTANTS:
        killers, code, seconds = run_mutant(root, mutant, pytest_args)
        killed = code != 0 and bool(killers)
        all_killed &= killed
        shown = ", ".join(name.split("::")[-1] for name in killers[:4]) + (f" (+{len(killers) - 4} more)" if len(killers) > 4 else "")
        write(f"{'KILLED  ' if killed else 'SURVIVED'} {mutant.name:28} {seconds:4.0f} s  {len(killers):3} failing: "
              f"{shown or '(none: exit ' + str(code) + ')'}")
    return all_killed
