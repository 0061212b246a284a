"""Every exporting device of the centre: its export layout, its row builder, rows per session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from synth.centre.devices import (
    BALANCE,
    CHECKUP,
    EMG,
    GAIT,
    Day,
    Device,
    balance_rows,
    checkup_rows,
    emg_rows,
    gait_rows,
)
from synth.centre.stations import (
    BODY,
    FOOT,
    MOBILITY,
    POSTURE,
    body_rows,
    foot_rows,
    mobility_rows,
    posture_rows,
)
from synth.centre.visits import Sessions

Builder = Callable[[Day, Sessions, np.random.Generator], dict[str, Any]]

DEVICE_SPECS: Final[dict[str, Device]] = {
    d.name: d for d in (CHECKUP, GAIT, BALANCE, EMG, BODY, MOBILITY, FOOT, POSTURE)
}
BUILDERS: Final[dict[str, Builder]] = {
    "gait": gait_rows,
    "balance": balance_rows,
    "checkup": checkup_rows,
    "emg": emg_rows,
    "body": body_rows,
    "mobility": mobility_rows,
    "foot": foot_rows,
    "posture": posture_rows,
}
# Balance writes an eyes-open and an eyes-closed trial per session; every other device one row.
ROWS_PER_SESSION: Final = {name: 2 if name == "balance" else 1 for name in DEVICE_SPECS}
