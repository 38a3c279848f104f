"""Dataset preparation for BasicSR / the SRGAN plugin: ``python -m srgan_plugin.prepare COMMAND``.

Commands:
    demo    a tiny offline dataset from the photos bundled with scikit-image (:mod:`srgan_plugin.prepare.demo`)

Reusable pieces for further recipes:
    :mod:`~srgan_plugin.prepare.lmdb_io`   BasicSR-format LMDB writing and checking (``meta_info.txt``)
    :mod:`~srgan_plugin.prepare.imgops`    MATLAB-bicubic resize, mod-crop, sub-image cropping (BasicSR's rules)
    :mod:`~srgan_plugin.prepare.staging`   build in a staging folder, rename into place when finished; manifests
    :mod:`~srgan_plugin.prepare.cli`       the argparse CLI; one ``add_parser(subparsers)`` per command module
"""
