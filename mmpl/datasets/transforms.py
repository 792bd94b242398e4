"""Image loading that names the file it cannot decode.

Images are not decoded when a dataset is built (that would read every file
of ImageNet at start-up); a file that exists but does not decode fails when
it is first loaded, here, with one line naming it. ``prepare_data.py --check
--verify-images`` decodes every image up front instead.
"""
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS

from ..utils.errors import DataError


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` (same arguments, same output) that
    raises ``ValueError('cannot decode image <path> ...')`` instead of an
    assertion or a decoder error when a file is corrupt or not an image."""

    def transform(self, results: dict):
        filename = results['img_path']
        try:
            out = super().transform(results)
        except FileNotFoundError:
            raise
        except Exception as e:  # decoder errors, mmcv's assertion
            raise DataError(
                f'cannot decode image {filename} ({type(e).__name__}: '
                f'{str(e).splitlines()[0] if str(e) else "no detail"}); the '
                'file is corrupt or not an image: re-download it or remove it '
                'from the dataset') from None
        return out
