# For the tests' wandb SDK environment only (wandb-sdk-venv.sh): the opentelemetry-semantic-conventions wheel that
# opentelemetry-sdk imports is not on disk, and wandb only needs its names to exist. Every module under
# opentelemetry.semconv is made on import, and every constant in it is a string.
import importlib.abc, importlib.machinery, sys, types
class _Mod(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"): raise AttributeError(name)
        if name[:1].isupper() and not name.isupper():
            meta = type("Meta", (type,), {"__getattr__": lambda c, n: n.lower().replace("_", ".")})
            return meta(name, (), {})  # classes like ResourceAttributes
        return name.lower().replace("_", ".")
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "opentelemetry.semconv" or fullname.startswith("opentelemetry.semconv."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    def create_module(self, spec):
        m = _Mod(spec.name); m.__path__ = []; return m
    def exec_module(self, module): pass
sys.meta_path.insert(0, _Finder())
