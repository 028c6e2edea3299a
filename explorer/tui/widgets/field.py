"""A one-line text field whose editing keys act in the order they were typed.

Textual's :class:`~textual.widgets.Input` inserts a printable key in its own key handler but
runs its editing keys (backspace, delete, arrows, enter) as bindings, which only run once the
key has bubbled up to the app. Keys that arrive together (a browser over the network sends
them in bursts) are then applied out of order: backspace then ``4`` in a field holding
``3`` left it empty, because the ``4`` replaced the selected ``3`` before the backspace ran.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class Field(Input):
    """An :class:`Input` that runs its own key bindings at once, in key order."""

    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            bindings = self._bindings.key_to_bindings.get(event.key, [])
            if bindings:
                event.stop()
                event.prevent_default()
                await self.run_action(bindings[0].action)
                return
        await super()._on_key(event)
