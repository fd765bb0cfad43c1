from ptsdk.backends.declared import DeclaredBackend


class TRLBackend(DeclaredBackend):
    name = "trl"
    framework = "trl"
