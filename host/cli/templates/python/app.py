"""`{{name}}`: a Gatehouse plugin in Python. It scores how bright its input
bytes are (their mean, 0-255) and says `dark` or `bright`: replace this
with your preprocessing, and hand heavy arithmetic to `gatehouse_sdk.nn`."""

from gatehouse_sdk import Plugin, descriptor, inference, invalid_input


class WitWorld(Plugin):
    def describe(self):
        return descriptor(
            "{{name}}",
            "0.1.0",
            "Mean of the input bytes (template)",
            inputs=["raw-tensor"],
            labels=["dark", "bright"],
        )

    def process(self, data):
        if not data:
            raise invalid_input("empty input")
        mean = sum(data) / len(data)
        return inference(label="bright" if mean >= 128 else "dark", score=mean)
