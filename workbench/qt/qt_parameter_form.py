"""A segmentation method's parameters as a form, built from what the server declares (``methods``): a
spin box for a number with its bounds, a check box for a yes/no, a drop-down list for one of a few names,
a text field otherwise; the description and the allowed range in each field's tooltip; the server's
refusal shown under the field it names."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.methods import Method, Parameter

__all__ = ["ERROR_STYLE", "QtParameterForm"]

BIG = 1e9
"""The bound of a spin box whose parameter has none."""
ERROR_STYLE = "color: #b3261e"


class QtParameterForm(QWidget):
    """One method's parameters: a field per parameter, with the server's refusal shown under it."""

    sig_choice_changed = Signal(str)
    """A drop-down list's parameter (by name) now holds another value."""

    def __init__(self, method: Method, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = method
        self.fields: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        layout = QFormLayout(self)
        for parameter in method.parameters:
            field = _field(parameter)
            hint = parameter.description + (f" Allowed: {parameter.bounds}." if parameter.bounds else "")
            field.setToolTip(f"{hint} Default: {parameter.default}.")
            error = QLabel()
            error.setStyleSheet(ERROR_STYLE)
            error.setWordWrap(True)
            error.hide()
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(field)
            column.addWidget(error)
            label = QLabel(f"{parameter.label}:")
            label.setBuddy(field)
            label.setToolTip(hint)
            layout.addRow(label, holder)
            self.fields[parameter.name], self.errors[parameter.name] = field, error
            if isinstance(field, QComboBox):
                name = parameter.name
                field.currentIndexChanged.connect(lambda _i, name=name: self.sig_choice_changed.emit(name))
        if not method.parameters:
            layout.addRow(QLabel("This method has no parameters to set."))

    def values(self) -> dict[str, Any]:
        """Every parameter as the form holds it now (``None`` for an unset nullable one)."""
        return {
            parameter.name: _value(parameter, self.fields[parameter.name])
            for parameter in self.method.parameters
        }

    def set_value(self, name: str, value: Any) -> None:
        field = self.fields[name]
        if isinstance(field, QCheckBox):
            field.setChecked(bool(value))
        elif isinstance(field, QSpinBox):
            field.setValue(field.minimum() if value is None else int(value))
        elif isinstance(field, QDoubleSpinBox):
            field.setValue(field.minimum() if value is None else float(value))
        elif isinstance(field, QComboBox):
            field.setCurrentIndex(max(field.findText(str(value)), 0))
        elif isinstance(field, QLineEdit):
            field.setText("" if value is None else str(value))

    def reset(self) -> None:
        for parameter in self.method.parameters:
            self.set_value(parameter.name, parameter.default)
        self.clear_errors()

    def clear_errors(self) -> None:
        for error in self.errors.values():
            error.hide()

    def show_error(self, name: str, message: str) -> None:
        self.errors[name].setText(message)
        self.errors[name].show()
        self.fields[name].setFocus()


def _field(parameter: Parameter) -> QWidget:
    field: QWidget
    if parameter.kind == "boolean":
        field = QCheckBox()
        field.setChecked(bool(parameter.default))
    elif parameter.kind == "integer":
        whole = QSpinBox()
        low = int(parameter.minimum) if parameter.minimum is not None else -int(BIG)
        high = int(parameter.maximum) if parameter.maximum is not None else int(BIG)
        whole.setRange(low - (1 if parameter.nullable else 0), high)
        whole.setValue(whole.minimum() if parameter.default is None else int(parameter.default))
        field = whole
    elif parameter.kind == "number":
        box = QDoubleSpinBox()
        box.setDecimals(3)
        box.setRange(
            parameter.minimum if parameter.minimum is not None else -BIG,
            parameter.maximum if parameter.maximum is not None else BIG,
        )
        span = box.maximum() - box.minimum()
        box.setSingleStep(0.01 if span <= 1 else 0.1 if span <= 10 else 1.0)
        if parameter.nullable:
            box.setMinimum(box.minimum() - box.singleStep())
        box.setValue(box.minimum() if parameter.default is None else float(parameter.default))
        field = box
    elif parameter.choices:
        listed = QComboBox()
        listed.addItems(list(parameter.choices))
        listed.setCurrentIndex(max(listed.findText(str(parameter.default)), 0))
        field = listed
    else:
        field = QLineEdit("" if parameter.default is None else str(parameter.default))
        if parameter.nullable:
            field.setPlaceholderText("automatic")
    if parameter.nullable and isinstance(field, (QSpinBox, QDoubleSpinBox)):
        field.setSpecialValueText("automatic")  # the lowest value stands for "left to the workers"
    if isinstance(field, (QSpinBox, QDoubleSpinBox)):
        field.setMinimumWidth(140)
    return field


def _value(parameter: Parameter, field: QWidget) -> Any:
    if isinstance(field, QCheckBox):
        return field.isChecked()
    if isinstance(field, (QSpinBox, QDoubleSpinBox)):
        if parameter.nullable and field.value() == field.minimum():
            return None
        return field.value()
    if isinstance(field, QComboBox):
        return field.currentText()
    text = field.text().strip() if isinstance(field, QLineEdit) else ""
    return None if parameter.nullable and not text else text
