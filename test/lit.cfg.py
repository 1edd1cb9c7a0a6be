# lit configuration for llamac: FileCheck tests of the IR and of the tools.
import os
import shutil

import lit.formats

config.name = "llamac"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt", "Inputs", "lib"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.llamac_obj_root, "test")

config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"
config.environment["PATH"] = os.pathsep.join(
    [config.llamac_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")]
)

config.substitutions.append(("%llamac_src", config.llamac_src_root))
config.substitutions.append(("%models", os.path.join(config.llamac_src_root, "models")))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%llamac_bin", config.llamac_tools_dir))

# The LLaMA tokenizer lives in ../shared beside the checkout; tests that need it are skipped
# (and say so) where it is absent.
shared = os.path.join(os.path.dirname(config.llamac_src_root), "shared")
if os.path.exists(os.path.join(shared, "data", "llama-tokenizer.model")):
    config.available_features.add("llama-tokenizer")
    config.substitutions.append(("%shared", shared))

if config.llamac_have_cuda:
    config.available_features.add("nvcc")
if shutil.which("nvidia-smi") and os.system("nvidia-smi -L >/dev/null 2>&1") == 0:
    config.available_features.add("cuda")
