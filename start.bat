@echo off
rem Yijian (一键) start script for Windows.
rem   start.bat            open the launcher (TUI)
rem   start.bat COMMAND    run a launcher command, e.g. start.bat doctor
rem It finds a Python 3.10+ (the bundled python\ first; with none anywhere it downloads the pinned
rem embeddable Python into python\ through the mirrors), then runs stage 0 (python -m bootstrap).
setlocal
chcp 65001 >nul
set "ROOT=%~dp0"
set "ROOT=%ROOT:~0,-1%"
if defined YIJIAN_HOME (set "DATA=%YIJIAN_HOME%") else (set "DATA=%ROOT%")
set "PY="
if exist "%DATA%\env\launcher\Scripts\python.exe" set "PY=%DATA%\env\launcher\Scripts\python.exe"
if not defined PY if exist "%ROOT%\python\python.exe" set "PY=%ROOT%\python\python.exe"
if defined PY goto run
for %%V in (3.13 3.12 3.11 3.10) do (
  if not defined PY (
    for /f "delims=" %%P in ('py -%%V -c "import sys; print(sys.executable)" 2^>nul') do set "PY=%%P"
  )
)
if defined PY goto run
rem "python" may be the Microsoft Store stub, which runs nothing: check the version by running it.
for /f "delims=" %%P in ('python -c "import sys; assert sys.version_info >= (3, 10); print(sys.executable)" 2^>nul') do set "PY=%%P"
if defined PY goto run
rem No Python anywhere: fetch the pinned embeddable Python into python\ (PowerShell only; size and sha256
rem are checked before it is unpacked).  See bootstrap\fetch-python.ps1.
powershell -NoProfile -ExecutionPolicy Bypass -File "%ROOT%\bootstrap\fetch-python.ps1" -Root "%ROOT%" -Data "%DATA%"
set "RC=%ERRORLEVEL%"
if "%RC%"=="0" if exist "%ROOT%\python\python.exe" set "PY=%ROOT%\python\python.exe"
if defined PY goto run
if "%RC%"=="0" set "RC=6"
echo 没有找到 Python 3.10 或更新的版本。请安装 Python 3.10+，或把 Python 放到 %ROOT%\python\ 下。
echo No Python 3.10 or newer was found. Install Python 3.10+, or place one in %ROOT%\python\.
exit /b %RC%
:run
rem Your own PYTHONPATH/PYTHONHOME are replaced below; the doctor reads what they were (PYTHONPATH_SET).
set "YIJIAN_USER_PYTHONPATH=%PYTHONPATH%"
set "YIJIAN_USER_PYTHONHOME=%PYTHONHOME%"
set "PYTHONHOME="
set "PYTHONSTARTUP="
set "PYTHONUSERBASE="
set "PYTHONPATH=%ROOT%"
set "PYTHONUTF8=1"
"%PY%" -s -m bootstrap %*
exit /b %ERRORLEVEL%
