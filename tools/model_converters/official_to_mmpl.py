"""Convert a checkpoint of the authors' code into an mmpl checkpoint.

    python tools/model_converters/official_to_mmpl.py \
        output/base2new/train_base/imagenet/shots_16/MaPLe/seed1 \
        configs/maple/maple_vitb16_b2n_imagenet.py maple_imagenet_seed1.pth

SOURCE is a Dassl ``model.pth.tar-<epoch>`` file or its output folder (the one
holding ``prompt_learner/`` or ``MultiModalPromptLearner/``). Layouts: the
official CoOp, CoCoOp, KgCoOp, MaPLe and IVLP/PromptSRC prompt learners
(detected from the tensor names; ``--layout`` to force one). CONFIG is the mmpl
config of the same method and settings (n_ctx, depth, ...). The result is
evaluated as any mmpl checkpoint:

    python tools/test.py CONFIG maple_imagenet_seed1.pth
"""
import sys

from mmpl.utils.cli import ArgumentParser, CfgOptionsAction


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='official checkpoint file or folder')
    parser.add_argument('config', help='mmpl config of the same method')
    parser.add_argument('out', help='the mmpl checkpoint to write (.pth)')
    parser.add_argument('--layout', choices=['coop', 'cocoop', 'kgcoop',
                                             'maple', 'ivlp'],
                        help='official layout [detected]')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmpretrain.utils import register_all_modules

    import mmpl  # noqa: F401  (registers mmpl's modules)
    from mmpl.apis.preflight import check_cfg_options
    from mmpl.models.official_checkpoints import convert_official_checkpoint
    from mmpl.utils.config_file import read_config
    from mmpl.utils.errors import MMPLError
    from mmpl.utils.io import check_new_file
    register_all_modules(init_default_scope=True)
    try:
        check_new_file(args.out, 'OUT')
        cfg = read_config(args.config)  # only its model is used
        if args.cfg_options:
            check_cfg_options(cfg, args.cfg_options)
            cfg.merge_from_dict(args.cfg_options)
        checkpoint = convert_official_checkpoint(
            args.source, cfg.model.to_dict(), args.layout)
        with open(args.out, 'xb') as f:
            torch.save(checkpoint, f)
    except MMPLError as exc:  # OfficialCheckpointError, CLIPBuildError ...
        print(f'mmpl: error: {str(exc).splitlines()[0]}', file=sys.stderr)
        return 2
    info = checkpoint['meta']['converted_from']
    print(f'{info["layout"]} checkpoint (epoch {info["epoch"]}) -> '
          f'{args.out}: {len(checkpoint["state_dict"])} tensors, '
          f'{info["dropped"]} official tensors dropped (class-name buffers, '
          'frozen CLIP, unused)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
