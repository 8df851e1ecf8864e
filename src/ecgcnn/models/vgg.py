"""VGG11 adapted to 1D: five conv blocks (1-1-2-2-2 convs) and a three-layer classifier."""

from torch import nn

from ._registry import register_model

# (output channels, number of convs) per block, as in VGG11.
_VGG11_BLOCKS = ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2))


@register_model("vgg")
class VGG(nn.Module):
    """Each conv →BN→ReLU, each block →Dropout→MaxPool; GAP→FC(512)→ReLU→FC(512)→ReLU→Dropout→FC."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, n_convs in _VGG11_BLOCKS:
            for _ in range(n_convs):
                layers += [nn.Conv1d(channels, out_channels, 3, padding=1), nn.BatchNorm1d(out_channels),
                           nn.ReLU(inplace=True)]
                channels = out_channels
            layers += [nn.Dropout(dropout), nn.MaxPool1d(2)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 512),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))
