"""Dataset preparation for BasicSR / the SRGAN plugin: ``python -m srgan_plugin.prepare COMMAND``.

Commands:
    demo       a tiny offline dataset from the photos bundled with scikit-image (:mod:`srgan_plugin.prepare.demo`)
    div2k      DIV2K -> 480 px sub-images -> the LMDB pair the x4 options read (:mod:`srgan_plugin.prepare.div2k`)
    folder     any HR folder(s), e.g. BSD200 + T91 ("291") -> sub-image LMDB pair (:mod:`srgan_plugin.prepare.folder`)
    benchmark  Set5, Set14, ...: mod-cropped HR + MATLAB-bicubic LR (:mod:`srgan_plugin.prepare.testset`)
    verify     check one LMDB or an HR/LR pair; exit status 0 or 1 (:mod:`srgan_plugin.prepare.verify`)

Reusable pieces for further recipes:
    :mod:`~srgan_plugin.prepare.lmdb_io`   BasicSR-format LMDB writing, reading and checking (``meta_info.txt``)
    :mod:`~srgan_plugin.prepare.imgops`    MATLAB-bicubic resize, mod-crop, sub-image boxes (BasicSR's rules), the
                                           input image policy (8-bit BGR)
    :mod:`~srgan_plugin.prepare.keys`      image names -> keys BasicSR's meta_info parsing keeps intact; keys.tsv
    :mod:`~srgan_plugin.prepare.pipeline`  the parallel image -> sub-image pairs pipeline, the single-writer writers
    :mod:`~srgan_plugin.prepare.build`     the flow of every command: plan, path checks, reuse or refuse, staged build
    :mod:`~srgan_plugin.prepare.staging`   build in a staging folder, move into place when finished; manifests
    :mod:`~srgan_plugin.prepare.cli`       the argparse CLI; one ``add_parser(subparsers)`` per command module
"""
