"""The lab's method lists name configs of mmpl's catalogue."""
from mmpl.apis import list_methods, list_models
from mmpl_lab import shapes, yardstick


def test_lab_method_lists_name_catalogued_configs():
    """The yardstick's methods and the demo's name only configs the
    catalogue lists; a demo label that is a method of the catalogue runs
    that method's config."""
    by_config = {m.config: m for m in list_models()}
    methods = {m.name for m in list_methods()}
    for method in yardstick.METHODS.values():
        assert method.config in by_config, method.config
    for label, config in shapes.METHODS.items():
        assert config in by_config, config
        if label in methods:
            assert by_config[config].method == label, label
