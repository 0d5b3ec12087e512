"""tf.distribute: strategies, TF_CONFIG checks, batch/LR planning, MirroredStrategy training."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.config import ConfigError, LrStage, TrainingConfig
from core.training.cluster import read_tf_config
from core.training.distribute import (
    is_chief,
    make_strategy,
    replicas_of,
    run_dir_for,
    scale_for_replicas,
)

ROOT = Path(__file__).resolve().parents[2]


def _tf_config(task_type="worker", index=0, chief=False):
    cluster = {"worker": ["a:1", "b:1"]}
    if chief:
        cluster["chief"] = ["c:1"]
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    }


def test_scale_none_keeps_global_batch_and_lr():
    config = TrainingConfig(batch_size=64, stages=(LrStage(0.1, 2), LrStage(0.01, 1)))
    plan = scale_for_replicas(config, 4)
    assert plan.config is config
    assert (plan.global_batch, plan.per_replica_batch, plan.learning_rate_factor) == (64, 16, 1.0)
    assert "16 per replica" in plan.describe()


def test_scale_linear_keeps_per_replica_batch_and_multiplies_lr():
    config = TrainingConfig(batch_size=64, stages=(LrStage(0.1, 2), LrStage(0.01, 1)))
    plan = scale_for_replicas(config, 4, rule="linear")
    assert plan.config.batch_size == 256 and plan.per_replica_batch == 64
    assert [s.learning_rate for s in plan.config.stages] == pytest.approx([0.4, 0.04])
    assert [s.epochs for s in plan.config.stages] == [2, 1]
    assert config.batch_size == 64  # the original is untouched


def test_scale_refuses_bad_input_and_notes_uneven_split():
    config = TrainingConfig(batch_size=10)
    assert scale_for_replicas(config, 3).notes  # 10 / 3 is uneven: said, not hidden
    with pytest.raises(ConfigError, match="Received: replicas=0"):
        scale_for_replicas(config, 0)
    with pytest.raises(ConfigError, match="rule"):
        scale_for_replicas(config, 2, rule="sqrt")
    with pytest.raises(ConfigError, match="smaller than the number of replicas"):
        scale_for_replicas(TrainingConfig(batch_size=2), 4)
    with pytest.raises(ConfigError, match="above 10"):
        scale_for_replicas(TrainingConfig(stages=(LrStage(4.0, 1),)), 4, rule="linear")


def test_tf_config_is_checked():
    with pytest.raises(ConfigError, match="TF_CONFIG unset"):
        read_tf_config({})
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_tf_config({"TF_CONFIG": "{nope"})
    with pytest.raises(ConfigError, match="task.index"):
        read_tf_config(_tf_config(index=5))
    assert read_tf_config(_tf_config(index=1))["task"]["index"] == 1


def test_chief_and_checkpoint_dirs(tmp_path):
    strategy = make_strategy("default")
    assert is_chief(strategy) and replicas_of(strategy) == 1 and replicas_of(None) == 1
    assert run_dir_for(tmp_path, strategy) == tmp_path

    import tensorflow as tf

    # Only the type decides; an uninitialised instance starts no cluster.
    fake = object.__new__(type("MW", (tf.distribute.MultiWorkerMirroredStrategy,), {}))
    assert is_chief(fake, _tf_config("worker", 0))
    assert not is_chief(fake, _tf_config("worker", 1))
    assert not is_chief(fake, _tf_config("worker", 0, chief=True))
    assert is_chief(fake, _tf_config("chief", 0, chief=True))
    assert run_dir_for(tmp_path, fake, _tf_config("worker", 0)) == tmp_path
    assert run_dir_for(tmp_path, fake, _tf_config("worker", 1)) is None  # writes nothing


def test_make_strategy_errors():
    with pytest.raises(ConfigError, match="Received: kind='tpu'"):
        make_strategy("tpu")
    with pytest.raises(ConfigError, match="one device"):
        make_strategy("default", devices=["/cpu:0", "/cpu:1"])
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_strategy("multi_worker", devices=["/cpu:0"])


# Logical devices must be configured before TensorFlow initialises its devices, which the
# test session has done already: the MirroredStrategy run happens in a fresh interpreter.
MIRRORED_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from core.training.distribute import make_strategy, replicas_of, strategy_scope
    from core.training.train_evaluate import train
    from tests.core.training_helpers import blob_data, tiny_config, tiny_engine

    strategy = make_strategy("mirrored")
    data = blob_data(n_train=128, n_val=32)
    for mode in ("adapters", "full"):
        with strategy_scope(strategy):
            engine = tiny_engine(data)
        domain = engine.domain(data.spec.name)
        adapter = domain.model.get_layer(f"{data.spec.name}_stem_adapter").kernel
        trunk = engine.trunk.convs["stem"].kernel
        before = [np.array(adapter.numpy()), np.array(trunk.numpy())]
        result = train(engine, data.spec.name, data, tiny_config(((0.05, 2),), mode=mode),
                       strategy=strategy)
        print("RESULT", json.dumps({
            "mode": mode,
            "replicas": replicas_of(strategy),
            "mirrored": type(trunk.value).__name__,
            "reason": result.reason,
            "losses": [h.train_loss for h in result.history],
            "val_accuracy": result.history[-1].val_accuracy,
            "adapter_changed": bool(np.abs(adapter.numpy() - before[0]).max() > 0),
            "trunk_changed": bool(np.abs(trunk.numpy() - before[1]).max() > 0),
        }))
""")


def test_mirrored_strategy_trains_on_two_logical_cpus():
    # Through core.training.train_evaluate.train(..., strategy=): the engine is built in the scope.
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [
        json.loads(ln[len("RESULT ") :])
        for ln in done.stdout.splitlines()
        if ln.startswith("RESULT ")
    ]
    assert [r["mode"] for r in results] == ["adapters", "full"], done.stdout[-2000:]
    for result in results:
        assert result["replicas"] == 2 and "Mirrored" in result["mirrored"], result
        assert result["reason"] == "completed" and len(result["losses"]) == 2
        assert result["val_accuracy"] is not None  # validation ran under the strategy
        assert all(math.isfinite(v) for v in result["losses"]), result
        assert result["adapter_changed"]
        assert result["trunk_changed"] is (result["mode"] == "full")
