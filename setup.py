"""Install the SRGAN plugin for BasicSR: ``pip install .`` or ``pip install -e .``.

Besides the ``srgan_plugin`` package this installs ``_srgan_plugin_autoload.py`` and ``srgan_plugin_autoload.pth``
into site-packages, so that ``python -m basicsr.train`` / ``basicsr.test`` find the plugin's classes. The ``.pth``
is written by ``build_py`` into the wheel's root, for regular and for editable (PEP 660) installs alike.
"""
import os
from os import path as osp

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
PTH_NAME = 'srgan_plugin_autoload.pth'
PTH_LINE = 'import _srgan_plugin_autoload; _srgan_plugin_autoload.install()\n'


class BuildPyWithAutoload(build_py):
    """``build_py`` that also writes the autoload ``.pth`` file next to the packages.

    A regular build puts it in ``build_lib``. In editable mode (setuptools >= 64) ``build_lib`` is not packed into
    the wheel; the files that are packed are those under the ``install`` command's ``install_lib`` (the unpacked
    editable wheel), so the ``.pth`` goes there.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            target_dir = self.get_finalized_command('install').install_lib
        else:
            target_dir = self.build_lib
        os.makedirs(target_dir, exist_ok=True)
        with open(osp.join(target_dir, PTH_NAME), 'w', encoding='utf-8') as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, 'editable_mode', False):
            outputs.append(osp.join(self.build_lib, PTH_NAME))
        return outputs


def read(name: str) -> str:
    with open(osp.join(HERE, name), encoding='utf-8') as f:
        return f.read()


def version() -> str:
    scope: dict = {}
    exec(read('srgan_plugin/version.py'), scope)
    return scope['__version__']


setup(
    name='srgan-plugin',
    version=version(),
    description='SRGAN (Ledig et al., CVPR 2017) for BasicSR: networks, losses, GAN model, options and tools',
    long_description=read('README.md'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['srgan_plugin', 'srgan_plugin.*']),
    py_modules=['_srgan_plugin_autoload'],
    include_package_data=False,
    package_data={'srgan_plugin': ['weights/*.pth', 'weights/manifest.json']},  # shipped generators, once trained
    install_requires=[
        'basicsr==1.4.2',
        # torch 2.4: torch.serialization.add_safe_globals (at import) and torch.OutOfMemoryError; torchvision 0.19 is
        # the release built for it. Every feature and its first release: TORCH_FEATURES in tests/test_packaging.py.
        'torch>=2.4',
        'torchvision>=0.19',
        'numpy',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'scikit-image',
        'tqdm',
    ],
    extras_require={
        'test': ['pytest>=7', 'pytest-xdist>=3', 'setuptools>=70', 'wheel'],
        # python -m srgan_plugin.export: torch's ONNX exporter needs onnx + onnxscript (and torch 2.5 for its
        # dynamic_shapes / external_data arguments); onnxruntime checks parity
        'export': ['torch>=2.5', 'onnx==1.23.2', 'onnxscript==0.7.2', 'onnxruntime==1.31.1'],
        # LPIPS in evaluate and BasicSR validation (AlexNet weights must already be in torch's hub cache)
        'lpips': ['lpips==0.1.4'],
    },
    cmdclass={'build_py': BuildPyWithAutoload},
    zip_safe=False,
)
