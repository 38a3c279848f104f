"""The shared base of the plugin: what every other layer may use, and which imports nothing else of the plugin.

- ``errors``: the error base class ``SRGANPluginError``, every user-facing error, and the exit statuses of every
  command (``command_errors``, the helper each command's ``main`` runs its body in).
- ``files``: files written whole or not at all (a temporary name beside the file, fsync, rename), and file hashes.
- ``distributed``: process groups (NCCL or gloo) and the rank / world-size helpers.
- ``images``: image files decoded as stored (any bit depth, channels, alpha).
"""
