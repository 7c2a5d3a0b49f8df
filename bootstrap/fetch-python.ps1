# Fetch the pinned Windows embeddable Python into ROOT\python\: start.bat's first start with no Python.
#
#   powershell -NoProfile -ExecutionPolicy Bypass -File bootstrap\fetch-python.ps1 -Root ROOT [-Data DATA]
#
# What:  the win-x64 build in ROOT\bootstrap\python-builds.toml (file, size, sha256).
# Where: the `python` channel of ROOT\mirrors.toml, entries of kind "embed" (URL templates with
#        {version}), in the order [mirrors] python in DATA\config.toml chooses: a mirror id or URL
#        first, then every mirror that is not "unverified", in catalog order.  [network] proxy and
#        offline are honoured.
# How:   into DATA\cache\python\FILE.part with HTTP Range requests, so it resumes across attempts,
#        runs and mirrors; size and sha256 are checked BEFORE the zip is unpacked.  The zip is
#        unpacked beside python\, its ._pth edited (Lib\site-packages, the bundle root "..",
#        "import site"), run once, then moved in.  Stage 0 then gives the launcher environment pip
#        (a pip wheel through the PyPI mirror) and builds it (bootstrap\portable.py).
# Exit:  0 ready; 4 no mirror could be reached (or offline); 5 a download did not verify;
#        6 nothing can be fetched (no pinned build, unpacking failed).
# PowerShell 5.1 (in every Windows 10/11) and nothing else.  Saved as UTF-8 with a BOM, so that
# PowerShell 5.1 reads the Chinese messages correctly.
param(
    [Parameter(Mandatory = $true)][string]$Root,
    [string]$Data = ""
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
if (-not $Data) { $Data = $Root }
try {
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
} catch { }

$Builds = Join-Path $Root 'bootstrap\python-builds.toml'
$Catalog = Join-Path $Root 'mirrors.toml'
$Config = Join-Path $Data 'config.toml'
$Cache = Join-Path $Data 'cache\python'
$LogDir = Join-Path $Data 'logs'
$Log = Join-Path $LogDir 'python-fetch.log'

function Write-Err([string]$Text) { [Console]::Error.WriteLine($Text) }

function Get-TomlValue([string]$Raw) {
    $v = $Raw.Trim()
    if ($v -match '^"([^"]*)"') { return $Matches[1] }
    return ($v -replace '\s*#.*$', '').Trim()
}

# Every [[Table]] entry of a TOML file, as hashtables of its simple `key = value` lines.
function Read-TomlTables([string]$Path, [string]$Table) {
    $out = New-Object System.Collections.ArrayList
    if (-not (Test-Path -LiteralPath $Path)) { return ,$out }
    $cur = $null
    foreach ($line in [IO.File]::ReadAllLines($Path, [Text.Encoding]::UTF8)) {
        $t = $line.Trim()
        if ($t -match '^\[\[\s*([^\]]+?)\s*\]\]') {
            if ($null -ne $cur) { [void]$out.Add($cur) }
            $cur = $null
            if ($Matches[1] -eq $Table) { $cur = @{} }
            continue
        }
        if ($t.StartsWith('[')) {
            if ($null -ne $cur) { [void]$out.Add($cur) }
            $cur = $null
            continue
        }
        if ($null -ne $cur -and $t -match '^([A-Za-z0-9_-]+)\s*=\s*(.*)$') { $cur[$Matches[1]] = Get-TomlValue $Matches[2] }
    }
    if ($null -ne $cur) { [void]$out.Add($cur) }
    return ,$out
}

# One value of config.toml ("" when absent).
function Get-ConfigValue([string]$Section, [string]$Key) {
    if (-not (Test-Path -LiteralPath $Config)) { return "" }
    $cur = ""
    foreach ($line in [IO.File]::ReadAllLines($Config, [Text.Encoding]::UTF8)) {
        $t = $line.Trim()
        if ($t -match '^\[\s*([^\]]+?)\s*\]') { $cur = $Matches[1]; continue }
        if ($cur -eq $Section -and $t -match ('^"?' + [regex]::Escape($Key) + '"?\s*=\s*(.*)$')) { return Get-TomlValue $Matches[1] }
    }
    return ""
}

$Lang = 'en'
$langSetting = Get-ConfigValue 'general' 'language'
if ($langSetting -like 'zh*' -or ((-not $langSetting -or $langSetting -eq 'auto') -and (Get-UICulture).Name -like 'zh*')) { $Lang = 'zh' }
function Say([string]$Zh, [string]$En) { if ($Lang -eq 'zh') { Write-Err $Zh } else { Write-Err $En } }
function Both([string]$Zh, [string]$En) { Write-Err $Zh; Write-Err $En }

$build = $null
$allBuilds = Read-TomlTables $Builds 'build'
foreach ($b in $allBuilds) { if ($b['target'] -eq 'win-x64') { $build = $b } }
if ($null -eq $build) {
    Both "没有适用于 Windows x64 的 Python 安装包可以下载。请安装 Python 3.10+，或把 Python 放到 $Root\python\ 下。" `
         "No Python build is pinned for Windows x64. Install Python 3.10+, or place one in $Root\python\."
    exit 6
}
$File = $build['file']; $Sha = $build['sha256'].ToLower(); $Version = $build['version']
$Size = [long]0
if ($build['size']) { $Size = [long]$build['size'] }
$Final = Join-Path $Cache $File
$Part = "$Final.part"

function Show-ManualHelp {
    Both "手动放置 Python：在能上网的电脑上从上面任一镜像下载 $File（sha256 $Sha），放到 $Cache\ 下，再运行一次 start.bat（先校验再解压）；或者把 Python 3.10+ 的嵌入式版解压到 $Root\python\，使 $Root\python\python.exe 可以运行。" `
         "To place a Python by hand: on a machine with internet access download $File (sha256 $Sha) from any mirror above, put it in $Cache\ and run start.bat again (it is verified, then unpacked); or unpack an embeddable Python 3.10+ into $Root\python\ so that $Root\python\python.exe runs."
}

function Test-Pinned([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path)) { return $false }
    if ($Size -gt 0 -and (Get-Item -LiteralPath $Path).Length -ne $Size) { return $false }
    return ((Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLower() -eq $Sha)
}

# The mirrors to try: the choice in config.toml first, then `auto`'s (never an unverified one).
$allMirrors = Read-TomlTables $Catalog 'python'
$mirrors = @($allMirrors | Where-Object { $_['kind'] -eq 'embed' -and $_['url'] })
$sources = New-Object System.Collections.ArrayList
function Add-Source([string]$Id, [string]$Url) {
    foreach ($s in $sources) { if ($s.Url -eq $Url) { return } }
    [void]$sources.Add([pscustomobject]@{ Id = $Id; Url = $Url })
}
$choice = Get-ConfigValue 'mirrors' 'python'
if ($choice -and $choice -ne 'auto') {
    if ($choice -match '^https?://' -and $choice.Contains('{version}')) { Add-Source 'custom' $choice }
    else { foreach ($m in $mirrors) { if ($m['id'] -eq $choice) { Add-Source $m['id'] $m['url'] } } }
}
foreach ($m in $mirrors) { if ($m['status'] -ne 'unverified') { Add-Source $m['id'] $m['url'] } }

$Proxy = Get-ConfigValue 'network' 'proxy'
New-Item -ItemType Directory -Force -Path $Cache, $LogDir | Out-Null

# One attempt at $Part from $Url, resuming what is there.  Returns "" or why it failed.
function Invoke-Fetch([string]$Url) {
    $have = [long]0
    if (Test-Path -LiteralPath $Part) { $have = (Get-Item -LiteralPath $Part).Length }
    $req = [Net.HttpWebRequest]::Create($Url)
    $req.UserAgent = 'yijian-start'
    $req.Timeout = 20000
    $req.ReadWriteTimeout = 60000
    if ($Proxy) { $req.Proxy = New-Object Net.WebProxy($Proxy) }
    if ($have -gt 0) { $req.AddRange([long]$have) }
    try {
        $resp = $req.GetResponse()
    } catch {
        $ex = $_.Exception
        while ($null -ne $ex.InnerException -and -not ($ex -is [Net.WebException])) { $ex = $ex.InnerException }
        if ($ex -is [Net.WebException] -and $null -ne $ex.Response) {
            $code = [int]$ex.Response.StatusCode
            if ($code -eq 416 -and $have -gt 0) { return "" }  # already complete: the hash decides
            return "HTTP $code"
        }
        if ($ex -is [Net.WebException]) { return $ex.Status.ToString() }
        return $ex.Message
    }
    $append = ($have -gt 0 -and [int]$resp.StatusCode -eq 206)
    $mode = if ($append) { [IO.FileMode]::Append } else { [IO.FileMode]::Create }
    $total = $resp.ContentLength
    if ($append -and $total -gt 0) { $total += $have }
    $done = if ($append) { $have } else { [long]0 }
    $in = $resp.GetResponseStream()
    $out = New-Object IO.FileStream($Part, $mode, [IO.FileAccess]::Write)
    $buf = New-Object byte[] 65536
    $shown = [DateTime]::Now
    try {
        while (($n = $in.Read($buf, 0, $buf.Length)) -gt 0) {
            $out.Write($buf, 0, $n)
            $done += $n
            if (([DateTime]::Now - $shown).TotalSeconds -ge 1) {
                $shown = [DateTime]::Now
                $pct = if ($total -gt 0) { "{0,3}%" -f [int](100 * $done / $total) } else { "" }
                [Console]::Error.Write(("`r  {0} {1:N1} MiB" -f $pct, ($done / 1048576)))
            }
        }
    } catch {
        return "connection dropped"
    } finally {
        $out.Close(); $in.Close(); $resp.Close()
        [Console]::Error.Write("`r" + (' ' * 40) + "`r")
    }
    return ""
}

$tried = @()
$mismatch = $false
if (Test-Pinned $Final) {
    Say "使用已下载并校验过的 $File" "Using the already downloaded and verified $File"
} else {
    if (Test-Path -LiteralPath $Final) { Remove-Item -LiteralPath $Final -Force }
    if ((Get-ConfigValue 'network' 'offline') -eq 'true') {
        Both "config.toml 设置了离线模式（[network] offline = true），不会下载 Python $Version。" `
             "config.toml sets offline mode ([network] offline = true): Python $Version is not downloaded."
        Show-ManualHelp
        exit 4
    }
    Say "没有找到 Python 3.10+：正在通过镜像下载 Python $Version（Windows x64 嵌入式版）到 python\ …" `
        "No Python 3.10+ found: downloading Python $Version (Windows x64, embeddable) into python\ through the mirrors ..."
    foreach ($src in $sources) {
        $url = $src.Url.Replace('{version}', $Version)
        Say "从 $($src.Id) 下载：$url" "Downloading from $($src.Id): $url"
        $reason = ""
        for ($try = 1; $try -le 4; $try++) {
            $before = [long]0
            if (Test-Path -LiteralPath $Part) { $before = (Get-Item -LiteralPath $Part).Length }
            $reason = Invoke-Fetch $url
            Add-Content -LiteralPath $Log -Value "$url -> $(if ($reason) { $reason } else { 'ok' })" -Encoding UTF8
            if (Test-Pinned $Part) { Move-Item -LiteralPath $Part -Destination $Final -Force; break }
            $after = [long]0
            if (Test-Path -LiteralPath $Part) { $after = (Get-Item -LiteralPath $Part).Length }
            if (-not $reason -or ($Size -gt 0 -and $after -ge $Size)) {
                $got = if (Test-Path -LiteralPath $Part) { (Get-FileHash -LiteralPath $Part -Algorithm SHA256).Hash.ToLower() } else { "-" }
                $reason = "size $after / sha256 $got, expected $(if ($Size -gt 0) { $Size } else { '?' }) / $Sha"
                Say "$($src.Id) 提供的文件校验失败（$reason），已删除" "The file from $($src.Id) does not verify ($reason); deleted"
                if (Test-Path -LiteralPath $Part) { Remove-Item -LiteralPath $Part -Force }
                $mismatch = $true
                break
            }
            if ($after -gt $before) {
                Say "下载中断（$reason），从第 $after 字节继续…" "The download was cut ($reason); resuming at byte $after ..."
                continue
            }
            Say "$($src.Id) 失败（$reason）" "$($src.Id) failed ($reason)"
            break
        }
        if (Test-Path -LiteralPath $Final) { break }
        $tried += "  - $($src.Id) ($url): $reason"
    }
    if (-not (Test-Path -LiteralPath $Final)) {
        $listing = if ($tried.Count) { "`n" + ($tried -join "`n") } else { " -" }
        Both "[PYTHON_FETCH_FAILED] 无法下载 Python $Version（Windows x64）。已尝试的镜像：$listing" `
             "[PYTHON_FETCH_FAILED] Could not download Python $Version (Windows x64). Mirrors tried:$listing"
        Both "请检查网络或代理（config.toml 的 [network] proxy），或在 [mirrors] python 中换一个镜像。详细记录：$Log" `
             "Check the network or the proxy ([network] proxy in config.toml), or choose another mirror as [mirrors] python. Details: $Log"
        Show-ManualHelp
        if ($mismatch) { exit 5 }
        exit 4
    }
}

# Unpack beside python\, make site-packages and the bundle root importable, check it runs, move it in.
$incoming = Join-Path $Root 'python.incoming'
if (Test-Path -LiteralPath $incoming) { Remove-Item -LiteralPath $incoming -Recurse -Force }
try {
    Expand-Archive -LiteralPath $Final -DestinationPath $incoming -Force
} catch {
    Both "解压 $Final 失败（磁盘空间不足？）：$($_.Exception.Message)" "Unpacking $Final failed (is the disk full?): $($_.Exception.Message)"
    exit 6
}
$pth = Get-ChildItem -LiteralPath $incoming -Filter 'python*._pth' | Select-Object -First 1
if ($null -eq $pth -or -not (Test-Path -LiteralPath (Join-Path $incoming 'python.exe'))) {
    Both "下载的文件不是 Windows 嵌入式 Python：$File" "The download is not a Windows embeddable Python: $File"
    exit 6
}
$zips = @(Get-Content -LiteralPath $pth.FullName | ForEach-Object { $_.Trim() } | Where-Object { $_ -like '*.zip' })
$lines = $zips + @('.', 'Lib\site-packages', '..', 'import site')
[IO.File]::WriteAllText($pth.FullName, (($lines -join "`r`n") + "`r`n"), (New-Object Text.UTF8Encoding($false)))
New-Item -ItemType Directory -Force -Path (Join-Path $incoming 'Lib\site-packages') | Out-Null
& (Join-Path $incoming 'python.exe') -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)"
if ($LASTEXITCODE -ne 0) {
    Remove-Item -LiteralPath $incoming -Recurse -Force
    Both "下载的 Python 无法在这台电脑上运行：$File" "The downloaded Python does not run on this machine: $File"
    Show-ManualHelp
    exit 6
}
$dest = Join-Path $Root 'python'
New-Item -ItemType Directory -Force -Path $dest | Out-Null
foreach ($item in (Get-ChildItem -LiteralPath $incoming -Force)) {
    $there = Join-Path $dest $item.Name
    if (Test-Path -LiteralPath $there) { Remove-Item -LiteralPath $there -Recurse -Force }
    Move-Item -LiteralPath $item.FullName -Destination $there
}
Remove-Item -LiteralPath $incoming -Recurse -Force
Say "Python $Version 已就绪：$dest" "Python $Version is ready: $dest"
exit 0
