"""Unit tests of the cuDNN hook (overlays/cudnn-hook) on the host Python, with the fake torch.

Run by `cargo test -p cli` (image_vllm_spark::hook_python_unit_tests) as
`python3 -m unittest -v test_sparkctl_cudnn` from this folder. Each hook case runs in a fresh
interpreter, as every process of the container does. Nothing here writes bytecode into the
overlay tree (it would end up in the image layer).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOOK = os.path.join(ROOT, "overlays/cudnn-hook/rootfs/usr/local/lib/sparkctl/python")
FAKE_TORCH = os.path.join(HERE, "fake-torch")
sys.dont_write_bytecode = True
sys.path.insert(0, HOOK)
import sparkctl_cudnn as hook  # noqa: E402


def python(code, env=None, args=()):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    base.update(env or {})
    p = subprocess.run([sys.executable, *args, "-c", code], env=base, capture_output=True, text=True)
    return p


class Decision(unittest.TestCase):
    def test_mode_from_env(self):
        self.assertEqual(hook.read_mode({}), ("auto", None))
        self.assertEqual(hook.read_mode({"SPARK_CUDNN": ""}), ("auto", None))
        self.assertEqual(hook.read_mode({"SPARK_CUDNN": " OFF "}), ("off", None))
        self.assertEqual(hook.read_mode({"SPARK_CUDNN": "on"}), ("on", None))
        mode, warning = hook.read_mode({"SPARK_CUDNN": "false"})
        self.assertEqual(mode, "auto")
        self.assertIn("SPARK_CUDNN=`false`", warning)
        self.assertIn("off|on|auto", warning)

    def test_capabilities_text(self):
        self.assertEqual(hook.parse_capabilities("12.1"), [(12, 1)])
        self.assertEqual(hook.parse_capabilities("9.0, 12.1"), [(9, 0), (12, 1)])
        self.assertEqual(hook.parse_capabilities("none"), [])
        for bad in ("", "12", "12.x", "sm_121"):
            self.assertIsNone(hook.parse_capabilities(bad), bad)
        self.assertEqual(hook.format_capabilities([(12, 1), (9, 0)]), "12.1,9.0")
        self.assertEqual(hook.format_capabilities([]), "none")

    def test_off_and_on_never_probe(self):
        def boom():
            raise AssertionError("probed")

        self.assertTrue(hook.should_disable("off", boom))
        self.assertFalse(hook.should_disable("on", boom))

    def test_auto_disables_only_on_sm_121(self):
        self.assertTrue(hook.should_disable("auto", lambda: [(12, 1)]))
        self.assertTrue(hook.should_disable("auto", lambda: [(9, 0), (12, 1)]))
        for caps in ([], [(9, 0)], [(12, 0)], [(10, 0)], [(8, 9)]):
            self.assertFalse(hook.should_disable("auto", lambda: caps), caps)

    def test_auto_keeps_cudnn_on_gb10_when_vllm_and_torch_bypass_it(self):
        gb10 = lambda: [(12, 1)]
        # vLLM >= 0.19 computes the patch-embed Conv3d as F.linear on any torch >= 2.9.0 (26.04+
        # bases); 0.13 to 0.18 only on torch == 2.9.0 exactly (`is_torch_equal("2.9.0")`).
        for versions in [
            ("2.10.0a0+git1234", "0.29.0+nv26.09"),
            ("2.9.1", "0.19.0"),
            ("2.11.0+cu130", "0.19.0rc1"),
            ("2.9.0", "0.13.0"),
            ("2.9.0+cu128", "0.17.1"),
            ("2.9.0.post1", "0.18.1"),
        ]:
            self.assertFalse(hook.should_disable("auto", gb10, lambda v=versions: v), versions)
        # 25.11 (vLLM 0.11), an older torch, a newer torch under vLLM 0.13-0.18 (the exact-2.9.0
        # test fails), a 2.9.0 pre-release (older than 2.9.0, as NGC's `2.9.0a0` builds are), or
        # unknown versions: cuDNN off as before.
        for versions in [
            ("2.9.0a0", "0.11.1"),
            ("2.8.0", "0.20.1"),
            ("2.10.0", "0.15.1"),
            ("2.9.1", "0.18.1"),
            ("2.10.0a0+nv26.02", "0.17.1"),
            ("2.9.0a0+nv25.10", "0.17.1"),
            ("2.9.0a0+nv25.10", "0.19.0"),
            ("2.9.0.dev20250901", "0.29.0"),
            (None, "0.20.1"),
            ("2.10.0", None),
            ("junk", "x.y"),
        ]:
            self.assertTrue(hook.should_disable("auto", gb10, lambda v=versions: v), versions)
        # Not a GB10: versions are not even asked.
        def boom():
            raise AssertionError("asked for versions")
        self.assertFalse(hook.should_disable("auto", lambda: [(9, 0)], boom))
        # `off` stays off whatever the stack.
        self.assertTrue(hook.should_disable("off", gb10, lambda: ("2.10.0", "0.31.0")))

    def test_version_parsing(self):
        self.assertEqual(hook.parse_release("2.9.0a0+git"), ((2, 9, 0), True))
        self.assertEqual(hook.parse_release("2.9.0+cu130"), ((2, 9, 0), False))
        self.assertEqual(hook.parse_release("2.10rc1"), ((2, 10, 0), True))
        self.assertEqual(hook.parse_release("2.9.0.dev20250901"), ((2, 9, 0), True))
        self.assertEqual(hook.parse_release("2.9.0.post1"), ((2, 9, 0), False))
        self.assertIsNone(hook.parse_release("junk"))
        self.assertEqual((hook.torch_at_least("2.9.0a0", (2, 9, 0)), hook.torch_at_least("2.10.0a0", (2, 9, 0))), (False, True))
        self.assertEqual((hook.torch_exactly("2.9.0+cu128", (2, 9, 0)), hook.torch_exactly("2.9.1", (2, 9, 0))), (True, False))
        self.assertEqual(hook.parse_version("2.9.0a0+git"), (2, 9))
        self.assertEqual(hook.parse_version("0.31.0+nv26.10"), (0, 31))
        self.assertEqual(hook.parse_version("2.10rc1"), (2, 10))
        self.assertIsNone(hook.parse_version(None))
        self.assertIsNone(hook.parse_version("2"))

    def test_probe_result_is_cached_in_the_environment(self):
        calls = []

        def probe():
            calls.append(1)
            return [(12, 1)]

        env = {}
        self.assertEqual(hook.gpu_capabilities(env, probe), [(12, 1)])
        self.assertEqual(env["SPARK_CUDNN_GPU_CC"], "12.1")
        self.assertEqual(hook.gpu_capabilities(env, probe), [(12, 1)])
        self.assertEqual(len(calls), 1, "a child inheriting the environment does not probe again")
        self.assertEqual(hook.gpu_capabilities({"SPARK_CUDNN_GPU_CC": "none"}, probe), [])
        self.assertEqual(len(calls), 1)

    def test_nvml_without_a_driver_means_no_gpu(self):
        # The probe never raises; without a driver (the CI machine) it answers [] (cuDNN irrelevant).
        caps = hook.nvml_capabilities()
        self.assertIsInstance(caps, list)
        if not os.path.exists("/proc/driver/nvidia"):
            self.assertEqual(caps, [])


CASE = "import json, sys, torch; print(json.dumps({'enabled': torch.backends.cudnn.enabled, 'state': sys.modules['sparkctl_cudnn'].state}))"


class InFreshInterpreters(unittest.TestCase):
    def run_case(self, **env):
        env.setdefault("PYTHONPATH", HOOK + os.pathsep + FAKE_TORCH)
        p = python(CASE, env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout), p.stderr

    def test_off_disables_after_import(self):
        out, _ = self.run_case(SPARK_CUDNN="off")
        self.assertFalse(out["enabled"])
        self.assertTrue(out["state"]["disabled"])

    def test_on_leaves_it(self):
        out, _ = self.run_case(SPARK_CUDNN="on")
        self.assertTrue(out["enabled"])

    def test_auto_follows_the_gpu(self):
        out, _ = self.run_case(SPARK_CUDNN="auto", SPARK_CUDNN_GPU_CC="12.1")
        self.assertFalse(out["enabled"])
        out, _ = self.run_case(SPARK_CUDNN="auto", SPARK_CUDNN_GPU_CC="9.0")
        self.assertTrue(out["enabled"])
        out, _ = self.run_case()  # unset: auto; no driver here: no GPU
        self.assertTrue(out["enabled"])
        self.assertEqual(out["state"]["gpus"], [])

    def test_invalid_mode_warns_once_and_acts_as_auto(self):
        out, err = self.run_case(SPARK_CUDNN="false", SPARK_CUDNN_GPU_CC="12.1")
        self.assertFalse(out["enabled"])
        self.assertEqual(err.count("SPARK_CUDNN=`false` is not one of off|on|auto"), 1, err)

    def test_mode_is_read_when_torch_is_imported(self):
        code = "import os; os.environ['SPARK_CUDNN'] = 'off'; import torch; print(torch.backends.cudnn.enabled)"
        p = python(code, {"PYTHONPATH": HOOK + os.pathsep + FAKE_TORCH, "SPARK_CUDNN": "on"})
        self.assertEqual(p.stdout.strip(), "False", p.stderr)

    def test_no_torch_import_at_start_and_finder_leaves_after_torch(self):
        code = (
            "import sys; before = 'torch' in sys.modules; hooks = [type(f).__name__ for f in sys.meta_path];"
            "import torch; after = [type(f).__name__ for f in sys.meta_path]; print(before, 'TorchImportHook' in hooks, 'TorchImportHook' in after)"
        )
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "log")
            p = python("pass", {"PYTHONPATH": HOOK + os.pathsep + FAKE_TORCH, "FAKE_TORCH_LOG": log, "SPARK_CUDNN": "off"})
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(log), "a python that does not import torch imported it")
        p = python(code, {"PYTHONPATH": HOOK + os.pathsep + FAKE_TORCH})
        self.assertEqual(p.stdout.split(), ["False", "True", "False"], p.stderr)

    def test_torch_imported_before_install_is_handled(self):
        # e.g. a .pth that imports torch ahead of ours: install() applies at once.
        code = "import sys; sys.path.insert(0, %r); import torch; import sparkctl_cudnn as h; h.install(); print(torch.backends.cudnn.enabled)" % HOOK
        p = python(code, {"PYTHONPATH": FAKE_TORCH, "SPARK_CUDNN": "off"})
        self.assertEqual(p.stdout.strip(), "False", p.stderr)

    def test_submodule_import_first_still_applies(self):
        p = python("import torch.backends.cudnn as c; print(c.enabled)", {"PYTHONPATH": HOOK + os.pathsep + FAKE_TORCH, "SPARK_CUDNN": "off"})
        self.assertEqual(p.stdout.strip(), "False", p.stderr)

    def test_a_loader_with_slots_still_gets_the_switch(self):
        # A finder ahead of the path finder whose loader takes no new attributes.
        code = (
            "import sys, importlib.machinery as m\n"
            "class L(m.SourceFileLoader):\n"
            "    __slots__ = ()\n"
            "class F:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            "        spec = m.PathFinder.find_spec(name, path)\n"
            "        if name == 'torch' and spec: spec.loader = SlotLoader(spec.loader)\n"
            "        return spec\n"
            "class SlotLoader:\n"
            "    __slots__ = ('real',)\n"
            "    def __init__(self, real): self.real = real\n"
            "    def create_module(self, spec): return None\n"
            "    def exec_module(self, module): self.real.exec_module(module)\n"
            "sys.meta_path.insert(1, F)\n"
            "import torch; print(torch.backends.cudnn.enabled, type(torch.__spec__.loader).__name__)\n"
        )
        p = python(code, {"PYTHONPATH": HOOK + os.pathsep + FAKE_TORCH, "SPARK_CUDNN": "off"})
        self.assertEqual(p.stdout.split(), ["False", "_DelegatingLoader"], p.stderr)

    def test_chains_to_the_sitecustomize_it_shadows(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "sitecustomize.py"), "w") as f:
                f.write("import sys\nsys.base_sitecustomize_ran = __name__\n")
            code = "import sys; print(getattr(sys, 'base_sitecustomize_ran', None), sys.modules['sitecustomize'].__file__)"
            p = python(code, {"PYTHONPATH": os.pathsep.join([HOOK, FAKE_TORCH, d])})
            ran, own = p.stdout.split()
            self.assertEqual(ran, "sitecustomize", p.stderr)
            self.assertEqual(own, os.path.join(HOOK, "sitecustomize.py"))
            # A base sitecustomize ahead of ours wins and ours is not imported (no double run).
            p = python(code, {"PYTHONPATH": os.pathsep.join([d, HOOK])})
            self.assertEqual(p.stdout.split()[0], "sitecustomize", p.stderr)

    def test_a_broken_base_sitecustomize_does_not_stop_the_hook(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "sitecustomize.py"), "w") as f:
                f.write("raise RuntimeError('base is broken')\n")
            p = python(CASE, {"PYTHONPATH": os.pathsep.join([HOOK, FAKE_TORCH, d]), "SPARK_CUDNN": "off"})
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(json.loads(p.stdout)["enabled"])
            self.assertIn("base is broken", p.stderr)

    def test_report_for_the_entrypoint(self):
        p = python("import runpy; runpy.run_module('sparkctl_cudnn', run_name='__main__')", {"PYTHONPATH": HOOK, "SPARK_CUDNN": "auto", "SPARK_CUDNN_GPU_CC": "12.1"})
        self.assertEqual(p.stdout.splitlines(), ["installed: yes", "mode: auto", "gpus: 12.1", "versions: torch None, vllm None", "cudnn: off"], p.stderr)
        p = python("import runpy; runpy.run_module('sparkctl_cudnn', run_name='__main__')", {"PYTHONPATH": HOOK, "SPARK_CUDNN": "on"})
        self.assertEqual(p.stdout.splitlines(), ["installed: yes", "mode: on", "cudnn: on"], p.stderr)


if __name__ == "__main__":
    unittest.main()
