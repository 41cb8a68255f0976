"""A live loss curve for the dock: a few hundred points drawn with QPainter (napari ships no
plotting library, and one line needs none)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget


class LossCurve(QWidget):
    """Total generator loss against step, log-scaled in y."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("generator loss per step (log scale)")

    def clear(self) -> None:
        self.points = []
        self.update()

    def add(self, step: int, loss: float) -> None:
        if math.isfinite(loss) and loss > 0:
            self.points.append((step, loss))
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 24))
        if len(self.points) < 2:
            painter.end()
            return
        steps = [p[0] for p in self.points]
        logs = [math.log10(p[1]) for p in self.points]
        x0, x1 = min(steps), max(steps)
        y0, y1 = min(logs), max(logs)
        w, h, margin = self.width(), self.height(), 6
        line = QPolygonF()
        for step, value in zip(steps, logs, strict=True):
            x = margin + (step - x0) / max(x1 - x0, 1) * (w - 2 * margin)
            y = h - margin - (value - y0) / max(y1 - y0, 1e-9) * (h - 2 * margin)
            line.append(QPointF(x, y))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 170, 60), 1.5))
        painter.drawPolyline(line)
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(self.rect().adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                         f"{self.points[-1][1]:.3g} at step {self.points[-1][0]}")
        painter.end()
