# CLIP ViT-B/16 with OpenAI weights (QuickGELU is forced for them). Offline,
# set model.clip.pretrained to the local weight file, e.g.
#   --cfg-options model.clip.pretrained=checkpoints/ViT-B-16.pt
model = dict(
    type='PromptCLIPClassifier',
    clip=dict(arch='ViT-B-16', pretrained='openai'),
    text_prompt=dict(),  # set by the method's config (type=...)
)
